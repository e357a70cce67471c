"""The CLI's batch commands: ``relay batch submit``, ``resume``, ``status``, ``watch``,
``results``, ``cancel`` and ``list``, each a thin layer over
:class:`relay_core.batch.RelayClient` on a workspace (``-w``) and its store (``--store``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from relay_core.cli import EXIT_USAGE, _handles_errors, _state, cli
from relay_core.errors import JobConflict, WorkspaceError
from relay_core.serialize import unstructure

__all__: list[str] = []


def _client(workspace: str, *, store: str | None = None, create: bool = False) -> Any:
    """The workspace's client; only ``submit`` may create the workspace, so a mistyped
    ``-w`` of any other command is reported instead of becoming an empty workspace."""
    hub = _state().hub()
    try:
        from relay_core.batch._client import RelayClient

        return RelayClient(workspace, hub=hub, create=create, store=store)
    except BaseException as error:
        hub.close()
        if not isinstance(error, WorkspaceError) or not error.missing:
            raise
        marker = "no such directory" if store else "no relay.db"
        raise WorkspaceError(
            f"no workspace at {workspace} ({marker}); `relay batch submit` creates one",
            directory=workspace,
            missing=True,
        ) from None


def _interrupted(job: Any) -> str:
    """What to run for a job whose process died: the same advice from status and resume."""
    if job.status == "preparing":
        # Not all of its requests reached the workspace, so only the user has them all.
        return (
            "interrupted while storing its requests: submit them again with "
            f"relay batch submit REQUESTS --job-id {job.job_id}"
        )
    return "interrupted: relay batch resume"


def _job_line(job: Any) -> str:
    cost = "cost unknown" if job.cost.amount is None else f"${job.cost.amount:.4f}"
    if not job.has_results:
        cost = "cost when retrieved"
    status = f"{job.status} ({_interrupted(job)})" if job.interrupted else job.status
    counts = job.counts
    # A plugin's runner (Ray) answers an engine job: say whose, as `batch status` is
    # where a user checks the job went where they sent it.
    mode = f"{job.mode} ({job.runner})" if job.runner not in (None, "engine") else job.mode
    return (
        f"{job.job_id}  {status}  {mode}  {counts.completed} done, {counts.failed} failed "
        f"of {counts.total}  {cost}"
    )


_WORKSPACE = click.option(
    "-w",
    "--workspace",
    default=lambda: os.environ.get("RELAY_WORKSPACE", "relay-jobs"),
    show_default="$RELAY_WORKSPACE or ./relay-jobs",
    help="The workspace directory.",
)


_STORE = click.option(
    "--store",
    default=lambda: os.environ.get("RELAY_WORKSPACE_STORE") or None,
    show_default="$RELAY_WORKSPACE_STORE, else SQLite in the workspace",
    help="Where the job records live: a URL such as postgresql://user@host/db "
    "(relay-postgres), or $env.NAME to read it from the environment. The JSONL "
    "files stay in the workspace directory.",
)


_CONCURRENCY = click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Engine calls in flight.",
)


_ADDRESS = click.option(
    "--address",
    help="With a job runner (--mode ray): where it runs (for Ray: auto, or ray://HOST:PORT).",
)


def _runner_options(address: str | None) -> dict[str, Any] | None:
    """A runner's options from the command line; ``None`` keeps a job's own on resume."""
    return None if address is None else {"address": address}


@cli.group()
def batch() -> None:
    """Batch jobs in a workspace: submit, watch, fetch results."""


@batch.command("submit")
@click.argument("requests", type=click.Path(exists=True, dir_okay=False))
@click.option("-m", "--model", help="Alias or provider/model for requests naming none.")
@click.option("--job-id", help="The job's id (default: generated).")
@click.option(
    "--mode",
    default="auto",
    show_default=True,
    help="batch (provider batch APIs), engine (here), auto (batch where available), "
    "or a job runner a plugin offers: ray (relay-ray) runs the engine on a cluster.",
)
@click.option("-d", "--description", help="A note kept with the job.")
@_CONCURRENCY
@click.option("--overwrite", is_flag=True, help="Replace a finished job with this id.")
@_ADDRESS
@_WORKSPACE
@_STORE
@_handles_errors
def batch_submit(
    requests: str,
    model: str | None,
    job_id: str | None,
    mode: str,
    description: str | None,
    concurrency: int,
    overwrite: bool,
    address: str | None,
    workspace: str,
    store: str | None,
) -> None:
    """Submit the requests in REQUESTS (JSONL) as one job and print it.

    Each line is {"id", "prompt", "system_prompt", "model", "provider", "provider_args"}
    or a full request with "messages" and "custom_id".
    """
    with _client(workspace, store=store, create=True) as client:
        job = client.submit_batch(
            requests,
            job_id=job_id,
            model=model,
            mode=mode,
            description=description,
            concurrency=concurrency,
            overwrite=overwrite,
            progress=True,
            runner_options=_runner_options(address),
        )
        click.echo(_job_line(job))


@batch.command("resume")
@click.argument("job_id")
@_CONCURRENCY
@_ADDRESS
@_WORKSPACE
@_STORE
@_handles_errors
def batch_resume(
    job_id: str, concurrency: int, address: str | None, workspace: str, store: str | None
) -> None:
    """Continue a job whose process died."""
    with _client(workspace, store=store) as client:
        try:
            job = client.resume(
                job_id,
                concurrency=concurrency,
                progress=True,
                runner_options=_runner_options(address),
            )
        except JobConflict as error:
            stuck = client.get_job(job_id)
            if error.status != "preparing" or not stuck.interrupted:
                raise
            raise JobConflict(
                f"job {job_id!r} cannot be resumed: its process died while its requests were "
                "being stored, so " + _interrupted(stuck),
                job_id=job_id,
                status="preparing",
            ) from None
        click.echo(_job_line(job))


@batch.command("status")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_WORKSPACE
@_STORE
@_handles_errors
def batch_status(job_id: str, as_json: bool, workspace: str, store: str | None) -> None:
    """The job's state and counts, fresh from its providers."""
    with _client(workspace, store=store) as client:
        job = client.monitor_batch(job_id)
    click.echo(json.dumps(unstructure(job)) if as_json else _job_line(job))


@batch.command("watch")
@click.argument("job_id")
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds between polls.",
)
@_WORKSPACE
@_STORE
@_handles_errors
def batch_watch(job_id: str, interval: float, workspace: str, store: str | None) -> None:
    """Print the job's progress until it is done."""
    with _client(workspace, store=store) as client:
        last = ""
        while True:
            job = client.monitor_batch(job_id)
            line = _job_line(job)
            if line != last:
                click.echo(line)
                last = line
            if job.done or job.interrupted:
                return
            time.sleep(interval)


@batch.command("results")
@click.argument("job_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write JSONL here ('-', the default: standard output).",
)
@click.option("--refresh", is_flag=True, help="Fetch from the provider again.")
@_WORKSPACE
@_STORE
@_handles_errors
def batch_results(
    job_id: str, output: str | None, refresh: bool, workspace: str, store: str | None
) -> None:
    """The job's results as JSONL (fetched once, then from the workspace)."""
    to_file = output not in (None, "-")
    with _client(workspace, store=store) as client:
        client.retrieve(job_id, force_refresh=refresh)
        with contextlib.ExitStack() as stack:
            target = None
            if to_file:
                try:
                    target = stack.enter_context(Path(str(output)).open("w", encoding="utf-8"))
                except OSError as error:
                    click.echo(f"error: cannot write {output}: {error.strerror}", err=True)
                    sys.exit(EXIT_USAGE)
            for item in client.iter_results(job_id):
                line = json.dumps(unstructure(item), ensure_ascii=False)
                if target is None:
                    click.echo(line)
                else:
                    target.write(line + "\n")
        if to_file:
            click.echo(_job_line(client.get_job(job_id)), err=True)


@batch.command("cancel")
@click.argument("job_id")
@_WORKSPACE
@_STORE
@_handles_errors
def batch_cancel(job_id: str, workspace: str, store: str | None) -> None:
    """Cancel the job; what was answered keeps its results."""
    with _client(workspace, store=store) as client:
        click.echo(_job_line(client.cancel_batch(job_id)))


@batch.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_WORKSPACE
@_STORE
@_handles_errors
def batch_list(as_json: bool, workspace: str, store: str | None) -> None:
    """Every job in the workspace, newest first."""
    with _client(workspace, store=store) as client:
        jobs = client.list_jobs()
    if as_json:
        click.echo(json.dumps([unstructure(job) for job in jobs]))
    elif not jobs:
        click.echo(f"no jobs in {workspace}")
    for job in jobs if not as_json else ():
        click.echo(_job_line(job))
