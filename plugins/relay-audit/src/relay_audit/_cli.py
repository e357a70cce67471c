"""``relay audit``: added to the ``relay`` command by the plugin."""

from __future__ import annotations

import json
import sys

import attrs
import click

from relay_audit._verify import verify as verify_file

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """Audit trails written by relay-audit."""


@audit.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
def verify(files: tuple[str, ...], as_json: bool) -> None:
    """Check the hash chain of JSONL audit FILES.

    Exits 0 when every chain is intact, 1 naming the first bad line of each file that
    is not (edited, deleted, inserted, moved or truncated records).
    """
    broken = False
    for file in files:
        try:
            verdict = verify_file(file)
        except OSError as error:
            raise click.ClickException(f"{file}: cannot read: {error.strerror}") from None
        broken = broken or not verdict.ok
        if as_json:
            click.echo(json.dumps({"file": file, **attrs.asdict(verdict)}))
        else:
            click.echo(f"{file}: {verdict.summary()}")
    sys.exit(1 if broken else 0)
