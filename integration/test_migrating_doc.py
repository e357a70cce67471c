"""The migration guides keep their shape: each shows the other tool's code beside Relay's.

``docs/migrating.md`` lists one guide per tool, ``docs/how-to/migrate-*.md``. Their code
blocks run in ``test_site_blocks.py`` like every page of the site; this file checks what
makes a page a migration guide: the other tool's code (``{.theirs}``), Relay code that
runs, a catalog the page writes before its Relay code uses it, and a table of the tool's
names and Relay's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from site_blocks import blocks_of

ROOT = Path(__file__).resolve().parents[1]
OVERVIEW = ROOT / "docs" / "migrating.md"
GUIDES = sorted((ROOT / "docs" / "how-to").glob("migrate-*.md"))


def _id(page: Path) -> str:
    return page.name


def test_the_overview_links_every_guide() -> None:
    assert len(GUIDES) == 5  # one per tool Relay replaces
    text = OVERVIEW.read_text(encoding="utf-8")
    for guide in GUIDES:
        assert f"](how-to/{guide.name})" in text, guide.name


@pytest.mark.parametrize("page", GUIDES, ids=_id)
def test_every_guide_shows_their_code_beside_relays(page: Path) -> None:
    blocks = blocks_of(page)
    theirs = [b for b in blocks if "theirs" in b.classes]
    runs = [b for b in blocks if b.runs and b.language in ("python", "console")]
    assert theirs, f"{page.name}: no block of the other tool's code ({{.theirs}})"
    assert runs, f"{page.name}: no Relay code that runs"


@pytest.mark.parametrize("page", GUIDES, ids=_id)
def test_every_guide_writes_its_catalog_before_relay_uses_it(page: Path) -> None:
    blocks = blocks_of(page)
    catalogs = [b for b in blocks if b.title == "relay.yaml"]
    assert catalogs, f"{page.name}: no relay.yaml block"
    first_python = next((b for b in blocks if b.runs and b.language == "python"), None)
    if first_python is not None:
        assert catalogs[0].line < first_python.line, page.name


@pytest.mark.parametrize("page", GUIDES, ids=_id)
def test_every_guide_has_a_names_table(page: Path) -> None:
    assert "| Relay |" in page.read_text(encoding="utf-8"), page.name
