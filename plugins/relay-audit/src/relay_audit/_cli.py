"""``relay audit``: added to the ``relay`` command by the plugin."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import attrs
import click

from relay_audit._verify import Head, Verdict
from relay_audit._verify import verify as verify_file

if TYPE_CHECKING:
    from relay_core.plugin import Secret

__all__ = ["audit"]

_KEY_HELP = (
    "Credential reference of the chain's HMAC key (plugins.audit.hmac_key), e.g. "
    "env:RELAY_AUDIT_KEY; never the key itself."
)


@click.group()
def audit() -> None:
    """Audit trails written by relay-audit."""


def _key(reference: str | None) -> Secret | None:
    """The key behind ``--key``; a usage error (exit 2) naming the reference otherwise."""
    if reference is None:
        return None
    from relay_audit._settings import resolve_key
    from relay_core.plugin import CredentialError, CredentialRef

    try:
        parsed = CredentialRef.parse(reference)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--key") from None
    try:
        return resolve_key(parsed)
    except CredentialError as error:
        raise click.BadParameter(error.reason, param_hint="--key") from None


def _check(file: str, key: Secret | None, head: Head | None = None) -> Verdict:
    try:
        return verify_file(file, key=key, head=head)
    except OSError as error:
        raise click.ClickException(f"{file}: cannot read: {error.strerror}") from None


@audit.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.option("--key", "key_ref", metavar="REF", help=_KEY_HELP)
@click.option(
    "--head",
    "head_text",
    metavar="EVENTS:HASH",
    help="An anchor `relay audit head` printed earlier: the file must still hold it.",
)
def verify(
    files: tuple[str, ...], as_json: bool, key_ref: str | None, head_text: str | None
) -> None:
    """Check the hash chain of JSONL audit FILES.

    Exits 0 when every chain is intact, 1 naming the first bad line of each file that
    is not (edited, deleted, inserted, moved or truncated records) or that is empty.

    Without --key or --head the chain proves the records were not changed, removed or
    inserted inside it; not that the whole file was not rewritten, nor cut at its end.
    --key checks each record's HMAC (a forged record fails); --head checks the file
    still holds an anchor kept elsewhere (a rewrite or a truncation fails).
    """
    head = None
    if head_text is not None:
        if len(files) > 1:
            raise click.UsageError("--head anchors one file; give one FILE with it")
        try:
            head = Head.parse(head_text)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--head") from None
    key = _key(key_ref)
    broken = False
    needs_key = False
    for file in files:
        verdict = _check(file, key, head)
        broken = broken or not verdict.ok
        needs_key = needs_key or verdict.needs_key
        if as_json:
            click.echo(json.dumps({"file": file, **attrs.asdict(verdict)}))
        else:
            click.echo(f"{file}: {verdict.summary()}")
    sys.exit(2 if needs_key else 1 if broken else 0)


@audit.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_ref", metavar="REF", help=_KEY_HELP)
def head(file: str, key_ref: str | None) -> None:
    """Print the head of the JSONL audit FILE's chain: EVENTS:HASH.

    Keep it somewhere the writer of the file cannot change (a ticket, another machine);
    later `relay audit verify --head EVENTS:HASH FILE` proves the file still holds those
    records unchanged. The chain is verified first: a broken or empty one has no head
    (exit 1).
    """
    verdict = _check(file, _key(key_ref))
    if not verdict.ok or verdict.head is None:
        click.echo(f"{file}: {verdict.summary()}", err=True)
        sys.exit(2 if verdict.needs_key else 1)
    click.echo(str(Head(verdict.events, verdict.head)))
