"""The shipped price snapshot: one row per model in ``prices.json``.

Each row holds the provider's list prices per million tokens, the model's limits and
capabilities, the URL of the provider's page the numbers were read from and the date
they were checked. A dated model id reaches its row only through the row's explicit
``aliases`` (``gpt-4.1-2025-04-14`` → ``gpt-4.1``), never by guessing from the name:
a near miss is an unknown model, not somebody else's price.

Bedrock's cross-region inference profiles are the one family of ids named by rule: a
row's ``inference_profiles`` lists the geographies (``us``, ``eu``, ``global``...) whose
profile ids bill at the row's price, and each becomes an alias ``<geography>.<model>``
(``us.anthropic.claude-sonnet-4-5-20250929-v1:0``). Bedrock bills a profile at the
price of the region the call is made from, and prices differ by region (``eu.`` Nova
calls cost more than ``us.`` ones) and by profile (``global.`` Claude 4.5 calls cost
10% less than geographic ones), so no prefix is ever stripped blindly: a geography a
row does not list is an unknown model, and a ``global.`` profile priced apart is a row
of its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relay_core.plugin import CostSource, ModelInfo, ModelPrice

__all__ = ["SNAPSHOT_NAME", "SnapshotSource", "load_rows"]

_DATA = "prices.json"
# The name sources are known by (in `Cost.priced_by`), kept equal to the data file's by a
# test, so that naming the source never reads the file.
SNAPSHOT_NAME = "Relay price snapshot 2026-11"


def load_rows(path: Path | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The snapshot's name and its rows, from ``path`` or the file shipped in the
    package."""
    text = (
        path.read_text(encoding="utf-8")
        if path is not None
        else resources.files(__package__ or "relay_pricing_snapshot")
        .joinpath(_DATA)
        .read_text(encoding="utf-8")
    )
    document = json.loads(text)
    return str(document["name"]), list(document["models"])


def _info(row: Mapping[str, Any], where: str) -> ModelInfo:
    from relay_core.plugin import ModelInfo, ModelPrice

    try:
        price = ModelPrice(
            input=float(row["input"]),
            output=float(row["output"]),
            cached_input=_optional(row.get("cached_input")),
            cache_write=_optional(row.get("cache_write")),
            batch_discount=float(row.get("batch_discount") or 0.0),
            source=str(row["source"]),
            as_of=str(row["as_of"]),
        )
        return ModelInfo(
            provider=str(row["provider"]),
            model=str(row["model"]),
            price=price,
            context_window=row.get("context_window"),
            max_output_tokens=row.get("max_output_tokens"),
            capabilities=frozenset(row.get("capabilities") or ()),
        )
    except (KeyError, TypeError, ValueError) as error:
        # The data ships with the package: a bad row is a packaging bug, named exactly.
        raise ValueError(f"{where}: {error}") from error


def _profile_ids(row: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The inference profile ids ``row`` declares: ``<geography>.<model>`` for each of
    its ``inference_profiles``."""
    geographies = row.get("inference_profiles") or ()
    if not isinstance(geographies, (list, tuple)) or not all(
        isinstance(geography, str) and geography and "." not in geography
        for geography in geographies
    ):
        raise ValueError(
            f"{where}: inference_profiles must be a list of geography names such as "
            f"'us' or 'global', not {geographies!r}"
        )
    return tuple(f"{geography}.{row['model']}" for geography in geographies)


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


class SnapshotSource:
    """The providers' list prices as shipped in this package (tier ``snapshot``).

    The file is read and indexed on the first :meth:`price` or :meth:`models` call,
    once; ``path`` replaces the shipped file (for tests and private price lists).
    """

    tier: CostSource = "snapshot"

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self.name = SNAPSHOT_NAME
        self._index: dict[tuple[str, str], ModelInfo] | None = None
        self._rows: list[ModelInfo] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SnapshotSource(name={self.name!r})"

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The list price of ``provider/model`` (or of a model it is an alias or an
        inference profile of)."""
        found = self._indexed().get((provider, model))
        return None if found is None else found.price

    def models(self, provider: str | None = None) -> Iterable[ModelInfo]:
        """Every model of the snapshot, of ``provider`` when given, in file order."""
        self._indexed()
        return [info for info in self._rows if provider is None or info.provider == provider]

    def _indexed(self) -> dict[tuple[str, str], ModelInfo]:
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    self._load()
                index = self._index
        assert index is not None
        return index

    def _load(self) -> None:
        _, rows = load_rows(self._path)
        index: dict[tuple[str, str], ModelInfo] = {}
        infos: list[ModelInfo] = []
        for number, row in enumerate(rows, 1):
            where = f"{_DATA} row {number}"
            info = _info(row, where)
            infos.append(info)
            for model in (info.model, *row.get("aliases", ()), *_profile_ids(row, where)):
                key = (info.provider, str(model))
                if key in index:
                    raise ValueError(f"{_DATA} row {number}: {key[0]}/{key[1]} is listed twice")
                index[key] = info
        self._rows, self._index = infos, index
