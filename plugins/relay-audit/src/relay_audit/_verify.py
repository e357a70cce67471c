"""Checking a JSONL audit file's hash chain: what ``relay audit verify`` runs.

Each line is checked as the bytes on disk: they must be the one encoding of their
record, its ``hash`` must match (an HMAC when the chain is keyed) and its ``prev`` must
be the hash before it. Against an anchor (a :class:`Head` kept elsewhere) the file must
still hold that hash as its record number N: a rewrite or a truncation shows there.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import frozen

from relay_audit._jsonl import is_canonical, key_bytes, parse_line
from relay_audit._record import KEYED, sealed

if TYPE_CHECKING:
    from relay_core.plugin import Secret

__all__ = ["Head", "Verdict", "verify"]

_HEAD = re.compile(r"^([1-9][0-9]*):((?:hmac-sha256:)?[0-9a-f]{64})$")


@frozen
class Head:
    """An anchor: the chain held ``events`` records and the last one's hash was ``hash``.

    Its text (``str(head)``, what ``relay audit head`` prints) is ``EVENTS:HASH``.
    """

    events: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Head:
        """The head written as ``EVENTS:HASH``; :class:`ValueError` for anything else."""
        match = _HEAD.match(text.strip())
        if match is None:
            raise ValueError("a head is EVENTS:HASH as `relay audit head` prints it, e.g. 12:3f5a…")
        return cls(int(match[1]), match[2])

    def __str__(self) -> str:
        return f"{self.events}:{self.hash}"


@frozen
class Verdict:
    """What :func:`verify` found.

    ``ok`` is true when the file holds records, every line is a record exactly as
    written (its bytes, its hash or HMAC) whose ``prev`` is the hash of the record
    before it, and, given an anchor, the anchored head is still there. Otherwise
    ``problem`` says what is wrong and ``line`` is the first bad line (1-based; ``None``
    for what concerns the whole file: empty, or shorter than the anchor).
    ``events`` counts the records checked before the first problem (all of them when
    ``ok``), ``head`` is the last good record's hash, and ``recovered`` lists the lines
    cut short by a crash that a later writer acknowledged (not a problem: see the
    README). ``keyed`` says every HMAC was checked with a key; ``needs_key`` that the
    chain is keyed and no key was given (a usage mistake, not tampering).
    """

    ok: bool
    events: int
    head: str | None
    line: int | None = None
    problem: str | None = None
    recovered: tuple[int, ...] = ()
    keyed: bool = False
    needs_key: bool = False

    def summary(self) -> str:
        """One line for people: ``12,345 events, chain intact`` or the first bad line."""
        if not self.ok:
            return f"line {self.line}: {self.problem}" if self.line else str(self.problem)
        chain = "keyed chain" if self.keyed else "chain"
        text = f"{self.events:,} event{'s' if self.events != 1 else ''}, {chain} intact"
        if self.recovered:
            lines = ", ".join(str(n) for n in self.recovered)
            text += f" ({len(self.recovered)} line(s) cut short by a crash, acknowledged: {lines})"
        if self.head is not None:
            text += f"; head {self.events}:{self.head}"
        return text


def verify(
    path: str | os.PathLike[str],
    *,
    key: Secret | bytes | str | None = None,
    head: Head | str | None = None,
) -> Verdict:
    """Recompute the hash chain of the JSONL audit file at ``path``, line by line.

    With ``key`` every record must carry an HMAC under it (an unkeyed record is one
    anyone could have forged). With ``head`` (an anchor from ``relay audit head``) the
    file must still hold that head as its record number ``head.events``.
    """
    secret = key_bytes(key)
    anchor = Head.parse(head) if isinstance(head, str) else head
    events = 0
    last: str | None = None
    last_line = 0
    recovered: list[int] = []
    fragment: tuple[int, bytes] | None = None  # a line that is not a record, awaiting its
    # acknowledgement by the next one

    def bad(line: int | None, problem: str, *, needs_key: bool = False) -> Verdict:
        return Verdict(
            False,
            events,
            last,
            line,
            problem,
            tuple(recovered),
            keyed=secret is not None,
            needs_key=needs_key,
        )

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
            keyed = record["hash"].startswith(KEYED)
            if keyed and secret is None and events:
                # Not a reason to ask for the key: that would let one forged line turn
                # a tampered unkeyed chain into a usage question.
                return bad(
                    number,
                    "a keyed record in an unkeyed chain (inserted, or written after "
                    "hmac_key was set in a file begun without it)",
                )
            if keyed and secret is None:
                return bad(
                    number,
                    "the chain is keyed (HMAC): its records can only be checked with the "
                    "key; give the credential reference of plugins.audit.hmac_key "
                    "(--key env:RELAY_AUDIT_KEY)",
                    needs_key=True,
                )
            if secret is not None and not keyed:
                return bad(
                    number,
                    "not keyed: its hash is a plain SHA-256 that anyone can compute (a "
                    "forged record, or one written without hmac_key)",
                )
            if not is_canonical(line, record):
                return bad(
                    number,
                    "edited: the line's bytes are not the ones written (a key added or "
                    "repeated, spacing or escapes changed)",
                )
            if not sealed(record, secret if keyed else None):
                return bad(
                    number,
                    "edited or forged: the HMAC does not match (changed after writing, or "
                    "written without the key)"
                    if keyed
                    else "edited: the record does not match its hash (changed after writing)",
                )
            if record.get("prev") != last:
                if last is None:
                    problem = (
                        "the first record follows another one: records were removed from "
                        "the start of the file"
                    )
                else:
                    problem = (
                        f"the chain breaks here: prev is not the hash of the record on line "
                        f"{last_line} (a record was deleted, inserted or moved)"
                    )
                return bad(number, problem)
            last, last_line = record["hash"], number
            events += 1
            if anchor is not None and events == anchor.events and last != anchor.hash:
                return bad(
                    number,
                    f"record {events} is not the anchored head {anchor}: the log was "
                    "rewritten up to here",
                )
    if fragment is not None:
        return bad(fragment[0], "not an audit record (not JSON, or no hash)")
    if anchor is not None and events < anchor.events:
        if events == 0:
            return bad(
                None,
                f"empty: the anchored head is record {anchor.events} (the file was emptied)",
            )
        return bad(
            None,
            f"shorter than the anchor: {events} record(s), the anchored head is record "
            f"{anchor.events} (records were removed from the end)",
        )
    if events == 0:
        return bad(
            None,
            "empty: nothing to verify (no records; an anchor from `relay audit head` "
            "would tell whether it had some)",
        )
    return Verdict(True, events, last, recovered=tuple(recovered), keyed=secret is not None)
