"""Part files: where workers write results and the driver reads them back.

A shard's attempt writes one part file of its own (``part-<first index>-<token>.jsonl``)
under the storage root, a result line at a time, flushed as it arrives, so a killed
worker loses only the calls it had in flight and leaves at most one torn line at the
end. The root is a directory every node can read (a shared path) or an ``fsspec`` URL
(``s3://bucket/prefix`` with the right fsspec package on every node).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import fsspec  # type: ignore[import-untyped]

__all__ = ["PartStore", "part_prefix"]


def part_prefix(first: int) -> str:
    return f"part-{first:010d}-"


class PartStore:
    """The part files under one storage root."""

    def __init__(self, root: str) -> None:
        self.root = root
        fs, path = fsspec.core.url_to_fs(root)
        self._fs: Any = fs
        self._path: str = path.rstrip("/")

    def make(self) -> None:
        """Create the root (and its parents) if it does not exist: the driver does, before
        any worker writes there."""
        self._fs.makedirs(self._path, exist_ok=True)

    def names(self, prefix: str = "part-") -> list[str]:
        """The names (not paths) of the part files under the root that start with
        ``prefix``, sorted: all of them by default, the attempts at one shard with
        :func:`part_prefix`. The driver lists them to read what the workers wrote;
        workers and driver share only these files, each building its own store from
        the root."""
        found = self._fs.glob(f"{self._path}/{prefix}*.jsonl")
        return sorted(str(name).rsplit("/", 1)[-1] for name in found)

    def open_new(self, first: int, token: str) -> Any:
        """A new part file for one attempt at the shard whose first request is ``first``,
        opened to append bytes (an fsspec file: the caller closes it). ``token`` must be
        unique to the attempt (the worker takes its process id and random hex), so no
        two writers share a file."""
        return self._fs.open(f"{self._path}/{part_prefix(first)}{token}.jsonl", "ab")

    def read_from(self, name: str, offset: int) -> tuple[list[bytes], int]:
        """The whole lines of part ``name`` past ``offset``, and the offset after them
        (a line still being written is left for the next read)."""
        with self._fs.open(f"{self._path}/{name}", "rb") as file:
            file.seek(offset)
            data = file.read()
        end = data.rfind(b"\n") + 1
        return data[:end].splitlines(), offset + end

    def answered(self, prefix: str) -> Iterator[int]:
        """The request indices the part files named ``prefix...`` hold whole results of."""
        for name in self.names(prefix):
            lines, _ = self.read_from(name, 0)
            for line in lines:
                try:
                    yield int(json.loads(line)["index"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn line: its request is answered again
