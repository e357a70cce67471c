"""Checking a JSONL audit file's hash chain: what ``relay audit verify`` runs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from attrs import frozen

from relay_audit._jsonl import parse_line
from relay_audit._record import digest

__all__ = ["Verdict", "verify"]


@frozen
class Verdict:
    """What :func:`verify` found.

    ``ok`` is true when every line is a record whose hash matches its content and whose
    ``prev`` is the hash of the record before it. Otherwise ``line`` is the first bad
    line (1-based) and ``problem`` says what is wrong with it. ``events`` counts the
    records checked before the first problem (all of them when ``ok``), ``head`` is the
    last good record's hash, and ``recovered`` lists the lines cut short by a crash that
    a later writer acknowledged (not a problem: see the README).
    """

    ok: bool
    events: int
    head: str | None
    line: int | None = None
    problem: str | None = None
    recovered: tuple[int, ...] = ()

    def summary(self) -> str:
        """One line for people: ``12,345 events, chain intact`` or the first bad line."""
        if not self.ok:
            return f"line {self.line}: {self.problem}"
        text = f"{self.events:,} event{'s' if self.events != 1 else ''}, chain intact"
        if self.recovered:
            lines = ", ".join(str(n) for n in self.recovered)
            text += f" ({len(self.recovered)} line(s) cut short by a crash, acknowledged: {lines})"
        if self.head is not None:
            text += f"; head {self.head}"
        return text


def verify(path: str | os.PathLike[str]) -> Verdict:
    """Recompute the hash chain of the JSONL audit file at ``path``, line by line."""
    events = 0
    head: str | None = None
    head_line = 0
    recovered: list[int] = []
    fragment: tuple[int, bytes] | None = None  # a line that is not a record, awaiting its
    # acknowledgement by the next one

    def bad(line: int, problem: str) -> Verdict:
        return Verdict(False, events, head, line, problem, tuple(recovered))

    with Path(path).open("rb") as file:
        for number, raw in enumerate(file, start=1):
            whole = raw.endswith(b"\n")
            line = raw[:-1] if whole else raw
            record = parse_line(line)
            if record is None:
                if not whole:
                    return bad(
                        number,
                        "truncated: the file ends in the middle of a record "
                        "(a write cut short by a crash or a full disk)",
                    )
                if fragment is not None:
                    return bad(fragment[0], "not an audit record (not JSON, or no hash)")
                fragment = (number, line)
                continue
            acknowledged = record.get("recovered")
            if fragment is not None:
                expected = {
                    "bytes": len(fragment[1]),
                    "sha256": hashlib.sha256(fragment[1]).hexdigest(),
                }
                if acknowledged != expected:
                    return bad(fragment[0], "not an audit record (not JSON, or no hash)")
                recovered.append(fragment[0])
                fragment = None
            elif acknowledged is not None:
                return bad(number, "acknowledges a cut-short line before it that is not there")
            if digest(record) != record["hash"]:
                return bad(
                    number, "edited: the record does not match its hash (changed after writing)"
                )
            if record.get("prev") != head:
                if head is None:
                    problem = (
                        "the first record follows another one: records were removed from "
                        "the start of the file"
                    )
                else:
                    problem = (
                        f"the chain breaks here: prev is not the hash of the record on line "
                        f"{head_line} (a record was deleted, inserted or moved)"
                    )
                return bad(number, problem)
            head, head_line = record["hash"], number
            events += 1
    if fragment is not None:
        return bad(fragment[0], "not an audit record (not JSON, or no hash)")
    return Verdict(True, events, head, recovered=tuple(recovered))
