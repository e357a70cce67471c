"""Every cassette in the repository holds no credential: no credential header on any
recorded request or answer, and no key-shaped text anywhere in the file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from relay_core.secrets import has_known_key_shape
from relay_core.testing import SECRET_HEADERS

CASSETTES = sorted((Path(__file__).resolve().parents[1] / "cassettes").glob("*/*.yaml"))


def test_there_are_cassettes_to_check() -> None:
    assert len(CASSETTES) > 50


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_cassette_holds_no_credential(path: Path) -> None:
    text = path.read_text()
    assert not has_known_key_shape(text), f"{path.name} holds key-shaped text"
    for interaction in yaml.safe_load(text)["interactions"]:
        for side in ("request", "response"):
            names = {name.lower() for name in interaction[side].get("headers") or {}}
            assert not names & set(SECRET_HEADERS), (
                f"{path.name} records {names & set(SECRET_HEADERS)}"
            )
        query = parse_qs(urlsplit(interaction["request"]["uri"]).query)
        assert "key" not in query, f"{path.name} records a key query parameter"


def test_each_cassette_folder_says_how_to_re_record() -> None:
    for folder in {path.parent for path in CASSETTES}:
        readme = folder / "README.md"
        assert readme.is_file(), f"{folder.name} has no README"
        assert "RELAY_RECORD=once" in readme.read_text()
