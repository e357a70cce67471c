"""Every hand-written cassette names its evidence: its folder's README has a row in its
``## Evidence`` table saying which public recording (repository, path, commit) its wire
facts were checked against, or that none exists. A cassette added without a row, or a
row left behind for a cassette removed, fails here, so the evidence cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "cassettes"
FOLDERS = sorted(path for path in ROOT.iterdir() if path.is_dir())
ROW = re.compile(r"^\| `(?P<name>[^`]+\.yaml)` \| (?P<source>[^|]+) \|", re.MULTILINE)
COMMIT = re.compile(r"@ `[0-9a-f]{40}`")


def evidence_rows(folder: Path) -> dict[str, str]:
    text = (folder / "README.md").read_text()
    _, found, section = text.partition("\n## Evidence\n")
    assert found, f"cassettes/{folder.name}/README.md has no '## Evidence' section"
    return {match["name"]: match["source"] for match in ROW.finditer(section)}


def test_there_are_cassette_folders() -> None:
    assert len(FOLDERS) >= 10


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_each_cassette_has_exactly_one_evidence_row(folder: Path) -> None:
    rows = evidence_rows(folder)
    cassettes = {path.name for path in folder.glob("*.yaml")}
    unexplained, stale = cassettes - rows.keys(), rows.keys() - cassettes
    assert not unexplained, f"{folder.name}: no evidence row for {sorted(unexplained)}"
    assert not stale, f"{folder.name}: evidence rows for missing cassettes {sorted(stale)}"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_each_row_names_a_pinned_recording_or_says_there_is_none(folder: Path) -> None:
    for name, source in evidence_rows(folder).items():
        assert COMMIT.search(source) or "no public recording" in source, (
            f"{folder.name}/{name}: name the recording with its commit, or say there is none"
        )
