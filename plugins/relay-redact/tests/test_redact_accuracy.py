"""Precision and recall per entity, measured on the labelled sample the tests ship
(``data/pii_sample.jsonl``; ``data/make_pii_sample.py`` writes it).

A prediction counts when its entity and its span equal a labelled one exactly: a phone
found without its country code is a miss and a false alarm, not half a hit.

Thresholds: precision ≥ 0.95 for every entity, because a false positive damages the
prompt the model reads (a date or an order number becomes ``<PHONE_1>``) on every call;
recall ≥ 0.9, because the formats left out on purpose (unseparated phone numbers,
undashed SSNs, lower-case NINOs, hex-only keys: see the README) are in the sample, and a
redactor that met a higher bar on them would be redacting order numbers too. Run with
``-s`` to see the table.

``data/pii_heldout.jsonl`` is the held-out part: written and committed before the
detectors for issue 21's formats were tuned, and never changed since. Its numbers are
the honest estimate; its bar (0.85) is a floor against regressions, set after its one
measurement, not a target the detectors were fitted to.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from relay_redact import ENTITIES, find_pii

SAMPLE = Path(__file__).parent / "data" / "pii_sample.jsonl"
HELD_OUT = Path(__file__).parent / "data" / "pii_heldout.jsonl"
MIN_PRECISION = 0.95
MIN_RECALL = 0.90
MIN_HELD_OUT = 0.85


def rows(path: Path = SAMPLE) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_sample_is_big_varied_and_consistent() -> None:
    sample = rows()
    assert len(sample) >= 150
    negatives = [r for r in sample if not r["entities"]]
    assert len(negatives) >= 50
    labelled = Counter(e["type"] for r in sample for e in r["entities"])
    assert set(labelled) == set(ENTITIES)
    assert min(labelled.values()) >= 10
    for row in sample:
        for entity in row["entities"]:
            assert row["text"][entity["start"] : entity["end"]] == entity["value"]


def measure(path: Path = SAMPLE) -> dict[str, tuple[int, int, int]]:
    """entity -> (true positives, false positives, false negatives)."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for row in rows(path):
        gold = {(e["type"], e["start"], e["end"]) for e in row["entities"]}
        predicted = {(f.entity, f.start, f.end) for f in find_pii(row["text"])}
        for entity, *_ in predicted & gold:
            tp[entity] += 1
        for entity, *_ in predicted - gold:
            fp[entity] += 1
        for entity, *_ in gold - predicted:
            fn[entity] += 1
    return {e: (tp[e], fp[e], fn[e]) for e in ENTITIES}


def table(counts: dict[str, tuple[int, int, int]]) -> str:
    lines = [f"{'entity':<12} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>8}"]
    for entity, (tp, fp, fn) in counts.items():
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        lines.append(f"{entity:<12} {tp:>4} {fp:>4} {fn:>4} {precision:>10.3f} {recall:>8.3f}")
    return "\n".join(lines)


def test_precision_and_recall_per_entity_meet_the_bar(capsys: pytest.CaptureFixture[str]) -> None:
    counts = measure()
    with capsys.disabled():
        print("\n" + table(counts))
    for entity, (tp, fp, fn) in counts.items():
        assert tp / (tp + fp) >= MIN_PRECISION, f"{entity} precision\n{table(counts)}"
        assert tp / (tp + fn) >= MIN_RECALL, f"{entity} recall\n{table(counts)}"


def test_no_false_positive_on_the_negative_lines() -> None:
    hits = [
        (row["text"], f.entity, f.value)
        for row in rows()
        if not row["entities"]
        for f in find_pii(row["text"])
    ]
    assert hits == []


def test_the_held_out_sample_covers_every_entity_and_issue_21s_formats() -> None:
    labelled = Counter(e["type"] for r in rows(HELD_OUT) for e in r["entities"])
    assert set(labelled) == set(ENTITIES)
    assert labelled["PRIVATE_KEY"] >= 8
    assert len([r for r in rows(HELD_OUT) if not r["entities"]]) >= 10


def test_precision_and_recall_on_the_held_out_sample(capsys: pytest.CaptureFixture[str]) -> None:
    counts = measure(HELD_OUT)
    with capsys.disabled():
        print("\nheld out:\n" + table(counts))
    for entity, (tp, fp, fn) in counts.items():
        assert tp / (tp + fp) >= MIN_HELD_OUT, f"{entity} precision\n{table(counts)}"
        assert tp / (tp + fn) >= MIN_HELD_OUT, f"{entity} recall\n{table(counts)}"
