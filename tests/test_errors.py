"""The error tree: its drawing is the truth, retry flags, messages a person can act on,
and no secret in any message."""

from __future__ import annotations

import re

import pytest

from relay_core import errors
from relay_core.errors import (
    AuthenticationError,
    ConfigError,
    ContentPolicyError,
    ContextWindowExceeded,
    CredentialError,
    GuardrailViolation,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    PluginNotInstalled,
    ProviderError,
    ProviderUnavailable,
    RateLimitError,
    RelayError,
    Timeout,
    UnknownAlias,
    UnsupportedCapability,
)
from relay_core.secrets import Secret

SECRET_VALUE = "a-registered-secret-value-123"
SECRET = Secret(SECRET_VALUE, source="$env.TEST_KEY")  # creating it registers the value
KEY_SHAPED = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345"  # never registered


# ---------------------------------------------------------------------------- the tree


_TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)(?:\s{2,}(?P<note>\S.*))?$")


def _drawn_tree() -> dict[str, tuple[str | None, str]]:
    """``{class name: (parent name, note)}`` from the drawing in the module docstring."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n", 1)[1].strip("\n").split("\n\n", 1)[0]  # the block after "::"
    tree: dict[str, tuple[str | None, str]] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = _TREE_LINE.match(line)
        assert match, f"cannot read tree line {line!r}"
        column = len(match["indent"])
        while stack and stack[-1][0] >= column:
            stack.pop()
        tree[match["name"]] = (stack[-1][1] if stack else None, match["note"] or "")
        stack.append((column, match["name"]))
    return tree


TREE = _drawn_tree()


def test_the_drawing_was_read() -> None:
    # Guards the parser: a drawing read as empty would make the checks below vacuous.
    assert TREE["RelayError"] == (None, "")
    assert TREE["CredentialError"][0] == "ConfigError"
    assert TREE["InvalidRequestError"][0] == "ProviderError"
    assert len(TREE) >= 17


def test_the_drawing_names_every_error_and_nothing_else() -> None:
    exported = {
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), BaseException)
    }
    defined = {
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, RelayError)
    }
    assert set(TREE) == exported == defined


@pytest.mark.parametrize("name", sorted(TREE))
def test_each_class_has_the_parent_drawn(name: str) -> None:
    parent, _ = TREE[name]
    cls = getattr(errors, name)
    if parent is None:
        assert cls.__bases__ == (Exception,)
    else:
        assert cls.__bases__ == (getattr(errors, parent),)
    assert cls.__doc__, f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(n for n, (p, _) in TREE.items() if p == "ProviderError"))
def test_retryable_flags_match_the_drawing(name: str) -> None:
    _, note = TREE[name]
    assert note.startswith(("retryable", "fail fast")), f"{name}: say retryable or fail fast"
    assert getattr(errors, name).retryable is note.startswith("retryable")


def test_retryable_flags() -> None:
    retryable = {RateLimitError, ProviderUnavailable, Timeout, MalformedResponse}
    fail_fast = {
        ProviderError,
        AuthenticationError,
        NotFoundError,
        ContextWindowExceeded,
        ContentPolicyError,
        InvalidRequestError,
    }
    for cls in retryable:
        assert cls("x").retryable is True, cls
    for cls in fail_fast:
        assert cls("x").retryable is False, cls


def test_catching_the_root_catches_everything() -> None:
    raised = [
        ConfigError("x"),
        CredentialError("x"),
        UnknownAlias("x"),
        PluginNotInstalled("p", "relay-p"),
        UnsupportedCapability("p", "tools"),
        GuardrailViolation("r", "x"),
        RateLimitError("x"),
        InvalidRequestError("x"),
    ]
    for error in raised:
        with pytest.raises(RelayError):
            raise error


# ---------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("kwargs", "rendered", "location"),
    [
        (
            {"file": "relay.yaml", "line": 12, "column": 5},
            "relay.yaml:12:5: unknown field 'modle'",
            "relay.yaml:12:5",
        ),
        (
            {"file": "relay.yaml", "line": 12},
            "relay.yaml:12: unknown field 'modle'",
            "relay.yaml:12",
        ),
        ({"file": "relay.yaml"}, "relay.yaml: unknown field 'modle'", "relay.yaml"),
        ({"file": "relay.yaml", "column": 5}, "relay.yaml: unknown field 'modle'", "relay.yaml"),
        ({}, "unknown field 'modle'", None),
        ({"line": 3, "column": 1}, "unknown field 'modle'", None),
    ],
)
def test_config_error_renders_like_a_compiler(
    kwargs: dict[str, object], rendered: str, location: str | None
) -> None:
    error = ConfigError("unknown field 'modle'", **kwargs)  # type: ignore[arg-type]
    assert str(error) == rendered
    assert error.location == location
    assert error.reason == "unknown field 'modle'"
    assert error.file == kwargs.get("file")
    assert error.line == kwargs.get("line")
    assert error.column == kwargs.get("column")


def test_credential_error_is_a_located_config_error() -> None:
    error = CredentialError("$env.OPENAI_API_KEY is not set", file="relay.yaml", line=3, column=14)
    assert isinstance(error, ConfigError)
    assert str(error) == "relay.yaml:3:14: $env.OPENAI_API_KEY is not set"


def test_unknown_alias_lists_the_known_ones_sorted() -> None:
    error = UnknownAlias("fsat", known=["smart", "fast", "claude"])
    assert error.alias == "fsat"
    assert str(error) == (
        "unknown model 'fsat': not an alias in the catalog and not 'provider/model'; "
        "known aliases: claude, fast, smart"
    )
    assert "known aliases" not in str(UnknownAlias("fsat"))


def test_plugin_not_installed_says_what_to_install() -> None:
    error = PluginNotInstalled("anthropic", "relay-anthropic")
    assert error.provider == "anthropic"
    assert error.distribution == "relay-anthropic"
    assert "'anthropic'" in str(error)
    assert "pip install relay-anthropic" in str(error)


def test_unsupported_capability_names_provider_and_capability() -> None:
    error = UnsupportedCapability("mock", "tools")
    assert (error.provider, error.capability, error.model) == ("mock", "tools", None)
    assert str(error) == "mock does not support tools"
    with_model = UnsupportedCapability("openai", "vision", model="gpt-3.5-turbo")
    assert str(with_model) == "openai/gpt-3.5-turbo does not support vision"


def test_guardrail_violation_names_the_rule_and_request() -> None:
    error = GuardrailViolation("no-pii", "an email address", custom_id="r7")
    assert error.rule == "no-pii"
    assert error.custom_id == "r7"
    assert str(error) == "request 'r7': guardrail 'no-pii' refused: an email address"
    assert str(GuardrailViolation("no-pii", "x")) == "guardrail 'no-pii' refused: x"


def test_rate_limit_error_carries_retry_after() -> None:
    assert RateLimitError("slow down").retry_after is None
    error = RateLimitError("slow down", retry_after=2.5, provider="acme", status_code=429)
    assert error.retry_after == 2.5
    assert error.retryable
    assert str(error) == "rate limited (acme, HTTP 429): slow down"


def test_provider_error_renders_what_is_known() -> None:
    assert str(ProviderError("boom")) == "error: boom"
    error = NotFoundError("no such model", provider="openai", model="gpt-9", status_code=404)
    assert str(error) == "not found (openai/gpt-9, HTTP 404): no such model"
    assert error.provider_message == "no such model"
    # The hub fills in the request's id after the adapter raised: str() follows.
    error.custom_id = "row-17"
    assert str(error) == "not found (openai/gpt-9, HTTP 404, request 'row-17'): no such model"


# ---------------------------------------------------------------------------- secrets


def _texts(error: RelayError) -> list[str]:
    return [str(error), repr(error), error.message, *map(str, error.args)]


SECRET_ERRORS = [
    pytest.param(lambda s: RelayError(f"key {s}"), id="RelayError"),
    pytest.param(
        lambda s: ConfigError(f"inline key {s}", file="relay.yaml", line=1, column=2),
        id="ConfigError",
    ),
    pytest.param(lambda s: CredentialError(f"value {s} is not a reference"), id="Credential"),
    pytest.param(lambda s: UnknownAlias(s, known=[s]), id="UnknownAlias"),
    pytest.param(lambda s: PluginNotInstalled(s, f"relay-{s}"), id="PluginNotInstalled"),
    pytest.param(lambda s: UnsupportedCapability(s, s, model=s), id="UnsupportedCapability"),
    pytest.param(lambda s: GuardrailViolation(s, f"saw {s}", custom_id=s), id="Guardrail"),
    pytest.param(
        lambda s: ProviderError(
            f"Incorrect API key provided: {s}",
            provider="acme",
            model=s,
            status_code=401,
            custom_id=s,
        ),
        id="ProviderError",
    ),
    pytest.param(
        lambda s: RateLimitError(f"key {s} is over quota", retry_after=1.0, model=s),
        id="RateLimitError",
    ),
    pytest.param(lambda s: AuthenticationError(f"bad key {s}", provider="acme"), id="Auth"),
]


@pytest.mark.parametrize("secret", [SECRET_VALUE, KEY_SHAPED], ids=["registered", "key-shaped"])
@pytest.mark.parametrize("make", SECRET_ERRORS)
def test_no_error_message_shows_a_secret(make: object, secret: str) -> None:
    error = make(secret)  # type: ignore[operator]
    for text in _texts(error):
        assert secret not in text
    assert "***" in str(error)


@pytest.mark.parametrize("secret", [SECRET_VALUE, KEY_SHAPED], ids=["registered", "key-shaped"])
def test_fields_set_after_raising_are_masked_too(secret: str) -> None:
    error = ProviderError("bad request", provider="acme")
    error.model = secret
    error.custom_id = secret
    assert secret not in str(error)


def test_provider_message_is_masked() -> None:
    error = AuthenticationError(f"Incorrect API key provided: {SECRET_VALUE}")
    assert error.provider_message == "Incorrect API key provided: ***"


def test_a_secret_object_shows_no_value_in_a_message() -> None:
    error = ConfigError(f"could not use {SECRET!r} or {SECRET}")
    assert SECRET_VALUE not in str(error)
    assert "$env.TEST_KEY" in str(error)


def test_every_error_survives_pickling() -> None:
    import pickle

    samples = [
        errors.ConfigError("bad", file="relay.yaml", line=3, column=5),
        errors.UnknownAlias("fast", known=["slow"]),
        errors.PluginNotInstalled("anthropic", "relay-anthropic"),
        errors.UnsupportedCapability("mock", "tools", model="echo"),
        errors.GuardrailViolation("max-cost", "too dear", custom_id="r1"),
        errors.RateLimitError("slow down", retry_after=2.0, provider="openai", status_code=429),
        errors.AuthenticationError("no", provider="openai", custom_id="r2"),
    ]
    for error in samples:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__ == error.__dict__
