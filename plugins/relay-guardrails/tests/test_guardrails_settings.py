"""``plugins.guardrails`` checked strictly (mistakes point at their catalog line), the
regex safety check, and the plugin's discovery."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from importlib.metadata import entry_points

import pytest

from relay_core import ConfigError, Hub
from relay_guardrails import Guardrails, Settings
from relay_guardrails._patterns import compile_pattern

MODELS = """\
models:
  fast: mock/echo
  smart: mock/think
groups:
  resilient: {strategy: fallback, members: [smart, fast]}
"""


def test_nothing_is_checked_by_default() -> None:
    settings = Settings.parse({})
    assert settings == Settings()
    assert settings.max_input_tokens == ()
    assert settings.allowed_models is None
    assert (settings.max_cost_per_call, settings.max_cost_per_job) == (None, None)
    assert (settings.unknown_price, settings.validate_output_schema) == ("allow", False)


def test_the_full_example_is_read(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(
        MODELS
        + textwrap.dedent(
            r"""
            plugins:
              guardrails:
                max_input_tokens: {fast: 100, "mock/*": 8000}
                blocked_patterns:
                  - {name: no-secrets, pattern: "(?i)password\\s*[:=]", applies_to: both}
                required_patterns:
                  - {name: cites, pattern: "\\[\\d+\\]", applies_to: output}
                allowed_models: {team-a: [resilient], default: [fast]}
                validate_output_schema: true
                max_cost_per_call: 0.05
                max_cost_per_job: 2
                unknown_price: refuse
                assumed_output_tokens: 256
                max_scan_chars: 5000
            """
        )
    )
    hub.chat("fast", "hello [1]")  # configures the hub's guardrails
    (guard,) = [p for p in hub.plugins.pm.get_plugins() if isinstance(p, Guardrails)]
    settings = guard.settings
    assert settings.max_input_tokens == (("fast", 100), ("mock/*", 8000))
    assert [r.name for r in settings.blocked_patterns] == ["no-secrets"]
    assert settings.blocked_patterns[0].pattern.search("Password = x")
    assert settings.required_patterns[0].applies_to == "output"
    # A group allows its members: the hook sees the member being called.
    assert settings.allowed_models == {
        "team-a": ("resilient", "smart", "fast"),
        "default": ("fast",),
    }
    assert settings.validate_output_schema
    assert (settings.max_cost_per_call, settings.max_cost_per_job) == (0.05, 2.0)
    assert (settings.unknown_price, settings.assumed_output_tokens) == ("refuse", 256)
    assert settings.max_scan_chars == 5000


@pytest.mark.parametrize(
    ("settings", "message", "line"),
    [
        (
            "max_imput_tokens: 5",
            "unknown field 'max_imput_tokens'; did you mean 'max_input_tokens'",
            8,
        ),
        ("max_input_tokens: 0", "max_input_tokens must be a whole number above 0", 8),
        ("max_input_tokens: {fats: 10}", "names 'fats', which is no model or group", 8),
        ("max_input_tokens: {fast: -1}", "max_input_tokens.fast must be a whole number", 8),
        ("max_cost_per_call: cheap", "max_cost_per_call must be an amount in USD", 8),
        ("max_cost_per_job: -1", "max_cost_per_job must be an amount in USD", 8),
        ("max_cost_per_job: .inf", "max_cost_per_job must be an amount in USD", 8),
        ("unknown_price: maybe", "unknown_price must be allow or refuse", 8),
        ("validate_output_schema: yes please", "must be true or false", 8),
        ("allowed_models: [fast]", "allowed_models must map callers", 8),
        ("allowed_models: {team-a: fast}", "allowed_models.team-a must be a list", 8),
        ("allowed_models:\n      team-a: [fast, smrt]", "allowed_models.team-a[1] names 'smrt'", 9),
        ("blocked_patterns: {name: x}", "blocked_patterns must be a list", 8),
        ("blocked_patterns:\n      - {pattern: x}", "blocked_patterns[0] needs a name", 9),
        ("blocked_patterns:\n      - {name: x}", "blocked_patterns[0] needs a pattern", 9),
        (
            "blocked_patterns:\n      - {name: x, pattern: 'a(', applies_to: input}",
            "blocked_patterns[0].pattern is not a valid regular expression",
            9,
        ),
        (
            "required_patterns:\n      - {name: x, pattern: a, applies_to: everywhere}",
            "required_patterns[0].applies_to must be input, output or both",
            9,
        ),
        (
            "required_patterns:\n      - {name: x, pattern: a, flags: i}",
            "required_patterns[0] has no setting 'flags'",
            9,
        ),
        (
            "blocked_patterns:\n      - {name: x, pattern: a}\n"
            "    required_patterns:\n      - {name: x, pattern: b}",
            "required_patterns[0].name repeats the rule name 'x'",
            11,
        ),
        ("assumed_output_tokens: 1.5", "assumed_output_tokens must be a whole number", 8),
    ],
)
def test_a_bad_setting_is_a_config_error_at_its_line(
    make_hub: Callable[..., Hub], settings: str, message: str, line: int
) -> None:
    hub = make_hub(MODELS + "plugins:\n  guardrails:\n    " + settings + "\n")
    with pytest.raises(ConfigError, match=r"plugins\.guardrails") as caught:
        hub.chat("fast", "x")
    assert message in caught.value.reason
    assert (caught.value.file, caught.value.line) == ("relay.yaml", line)


def test_settings_that_are_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="guardrails must be a mapping of rules"):
        Guardrails.from_mapping(["max_input_tokens"])  # type: ignore[arg-type]


def test_a_catastrophic_pattern_is_refused_where_it_is_written(
    make_hub: Callable[..., Hub],
) -> None:
    hub = make_hub(
        MODELS + "plugins:\n  guardrails:\n    blocked_patterns:\n"
        "      - name: words\n        pattern: '(\\w+\\s?)+$'\n"
    )
    with pytest.raises(ConfigError, match="nests an unbounded repetition") as caught:
        hub.chat("fast", "x")
    assert (caught.value.line, caught.value.column) == (10, 9)


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+", r"(\w+\s?)+$", "(.*,)*", "(x(a+)b)*", "((a+))+", "(?=(a+)+)", "(a{1,500})*"],
)
def test_nested_unbounded_repetitions_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="exponential time"):
        compile_pattern(pattern)


@pytest.mark.parametrize(
    "pattern",
    [r"(?i)password\s*[:=]", "(ab?)+", "(a|b)+", "(?:a+)++", "(a{2})+", r"\d{3}-\d{4}"],
)
def test_ordinary_patterns_pass(pattern: str) -> None:
    assert compile_pattern(pattern).pattern == pattern


def test_settings_in_code_name_the_setting_without_a_file() -> None:
    guard = Guardrails.from_mapping({"max_cost_per_call": 0.01, "allowed_models": {"x": ["a*"]}})
    assert guard.settings.max_cost_per_call == 0.01
    # Without a catalog, names cannot be checked against it: taken as written.
    assert guard.settings.allowed_models == {"x": ("a*",)}
    with pytest.raises(ConfigError, match=r"^plugins.guardrails.max_cost_per_call must be"):
        Guardrails.from_mapping({"max_cost_per_call": "a lot"})


def test_a_catalog_without_guardrails_configures_none(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(MODELS)
    assert hub.chat("fast", "password: hunter2").text == "password: hunter2"
    assert not any(isinstance(p, Guardrails) for p in hub.plugins.pm.get_plugins())


def test_the_entry_point_names_the_module() -> None:
    (entry,) = [e for e in entry_points(group="relay") if e.name == "guardrails"]
    assert entry.value == "relay_guardrails"


def test_the_entry_point_module_is_light() -> None:
    # Imported whenever plugins load: the rules and jsonschema wait for a configured hub.
    code = (
        "import sys, relay_guardrails; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('jsonschema', 'relay_guardrails.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
