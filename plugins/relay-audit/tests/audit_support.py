"""Helpers shared by relay-audit's tests (a module of its own: every plugin's tests are
collected in one run, where ``conftest`` names several modules)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relay_core import Hub

MakeHub = Callable[..., Hub]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL audit file."""
    return [json.loads(line) for line in path.read_text().splitlines()]
