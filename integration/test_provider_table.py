"""The site's provider table (docs/index.md) is what the installed plugins declare: it
cannot drift."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from relay_core.cli import _TABLE_BEGIN, _TABLE_END, cli

PAGE = Path(__file__).resolve().parents[1] / "docs" / "index.md"


def test_the_home_page_table_is_generated_from_the_plugins() -> None:
    result = CliRunner().invoke(cli, ["providers", "--markdown"])
    assert result.exit_code == 0, result.output
    generated = result.output.strip()
    written = PAGE.read_text(encoding="utf-8").split(_TABLE_BEGIN)[1].split(_TABLE_END)[0]
    assert written.strip() == generated, (
        "docs/index.md's provider table is stale: run `relay providers --update docs/index.md`"
    )
    # Every provider plugin of this repository is in it (the table is not just empty).
    for provider in ("openai", "anthropic", "gemini", "mistral", "together", "mock"):
        assert f"| `{provider}` |" in generated


def test_update_rewrites_only_the_table(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\n{_TABLE_BEGIN}\nold table\n{_TABLE_END}\n\nAfter.\n")

    result = CliRunner().invoke(cli, ["providers", "--update", str(page)])

    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text.startswith(f"# Title\n\n{_TABLE_BEGIN}\n| provider | install |")
    assert text.endswith(f"{_TABLE_END}\n\nAfter.\n")
    assert "old table" not in text
    missing = tmp_path / "plain.md"
    missing.write_text("no markers\n")
    refused = CliRunner().invoke(cli, ["providers", "--update", str(missing)])
    assert refused.exit_code != 0
    assert "has no" in refused.output


def test_every_provider_of_this_repository_knows_its_distribution() -> None:
    # What `provider 'x' is not installed; pip install ...` says, and the names a typo is
    # compared with, must cover every provider a plugin of this repository registers.
    from relay_core import PluginRegistry
    from relay_core.plugins import distribution_for

    registry = PluginRegistry()
    distributions = {info.name: info.distribution for info in registry.plugins()}
    registered = {name: distributions[entry.plugin] for name, entry in registry.providers().items()}
    assert {name: distribution_for(name) for name in registered} == registered
