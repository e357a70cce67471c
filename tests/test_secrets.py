"""Secrets never show themselves; masking blanks keys but leaves ordinary text alone; log
lines carry no secret, whatever shape the fields take.

Decision on UUIDs: they are identifiers (request, batch and trace ids) that people need to
read in logs and errors, so :func:`mask` leaves them alone, and :func:`looks_like_api_key`
does not call them keys, so a catalog may put one in a header.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle
from collections.abc import Callable, Iterator

import pytest

import relay_core.log as relay_log
from relay_core.log import configure_logging, get_logger
from relay_core.providers import ProviderSettings
from relay_core.secrets import (
    MASK,
    Secret,
    is_credential_name,
    looks_like_api_key,
    mask,
    redact_url,
)

SECRET_VALUE = "a-registered-secret-value-123"
SECRET = Secret(SECRET_VALUE, source="$env.TEST_KEY")  # registers the value for masking

KEYS = {
    "openai": "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
    "openai-project": "sk-proj-AbCdEf_123-XyZ987654321abcdefGHIJ",
    "anthropic": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEf",
    "openrouter": "sk-or-v1-0123456789abcdef0123456789abcdef",
    "google": "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    "groq": "gsk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "xai": "xai-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
}


# ---------------------------------------------------------------------------- Secret


def _renderings(secret: Secret) -> list[str]:
    return [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!s}",
        f"{secret!r}",
        format(secret, ""),
        "{}".format(secret),  # noqa: UP032 - str.format is a separate path
        "%s %r" % (secret, secret),  # noqa: UP031 - %-formatting is a separate path
        str([secret]),
        str({"api_key": secret}),
        repr(ProviderSettings(name="acme", api_key=secret)),
    ]


def test_secret_never_shows_its_value() -> None:
    secret = Secret("plain-value-for-display-0001")
    for text in _renderings(secret):
        assert "plain-value-for-display-0001" not in text
        assert MASK in text
    assert repr(secret) == "Secret(***)"
    assert secret.reveal() == "plain-value-for-display-0001"


def test_secret_shows_its_source() -> None:
    assert repr(SECRET) == "Secret(***, source='$env.TEST_KEY')"
    assert SECRET.source == "$env.TEST_KEY"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secret_cannot_be_pickled(protocol: int) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(SECRET, protocol=protocol)
    # Nor can anything holding one, so settings never reach a file by accident.
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(ProviderSettings(name="acme", api_key=SECRET), protocol=protocol)


def test_secret_cannot_be_copied_into_a_serialised_form() -> None:
    with pytest.raises(TypeError):
        copy.copy(SECRET)


def test_secrets_compare_by_value() -> None:
    one = Secret("compare-me-by-value-42")
    same = Secret("compare-me-by-value-42", source="file:~/.key")
    other = Secret("compare-me-by-value-43")
    assert one == same
    assert hash(one) == hash(same)
    assert one != other
    assert len({one, same, other}) == 2
    assert one != "compare-me-by-value-42"  # a secret is not its plain string
    assert ProviderSettings(name="a", api_key=one) == ProviderSettings(name="a", api_key=same)


# ---------------------------------------------------------------------------- mask


def test_mask_blanks_registered_secrets_wherever_they_are() -> None:
    text = f"key={SECRET_VALUE}; again:{SECRET_VALUE}!"
    assert mask(text) == "key=***; again:***!"


def test_mask_prefers_the_longest_registered_secret() -> None:
    Secret("shared-prefix-secret")
    Secret("shared-prefix-secret-and-more-9")
    assert mask("x shared-prefix-secret-and-more-9 y") == "x *** y"
    assert mask("x shared-prefix-secret y") == "x *** y"


def test_mask_treats_a_secret_as_text_not_a_pattern() -> None:
    Secret("p@ss.w*rd(1)+[x]")
    assert mask("use p@ss.w*rd(1)+[x] now") == "use *** now"
    assert mask("use pXssXwwwrd1 now") == "use pXssXwwwrd1 now"


def test_short_secrets_do_not_blank_ordinary_words() -> None:
    Secret("cat")  # too short to mask by value: it would eat every "cat" in every log
    assert mask("the cat sat") == "the cat sat"


@pytest.mark.parametrize("name", sorted(KEYS))
def test_mask_blanks_key_shaped_strings(name: str) -> None:
    key = KEYS[name]
    assert mask(f"Incorrect API key provided: {key}.") == "Incorrect API key provided: ***."
    assert mask(f'{{"api_key": "{key}"}}') == '{"api_key": "***"}'
    assert mask(f"?key={key}&alt=sse") == "?key=***&alt=sse"


@pytest.mark.parametrize(
    "header",
    [
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "authorization: Bearer opaque-token_1234567890",
    ],
)
def test_mask_blanks_bearer_tokens(header: str) -> None:
    name = header.split(":")[0]
    assert mask(header) == f"{name}: Bearer ***"


ORDINARY = [
    "2024-06-01T12:00:00Z",
    "2024-06-01 12:00:00.123456+00:00",
    "order ORD-2024-000123 shipped",
    "request 123e4567-e89b-12d3-a456-426614174000 failed",
    "batch_6789abcdef0123456789abcd is in_progress",
    "msg_01XFDUDYJgAACzvnptvVoYEL",
    "The quick brown fox jumps over the lazy dog.",
    "task-management-system-overview",
    "see the risk-assessment-guidelines-2024 and desk-booking-service-v2",
    "https://api.openai.com/v1/chat/completions",
    "https://example.com/blog/ask-the-expert-series-part-2",
    "http://127.0.0.1:8081/v1?model=llama&page=2&stream=true&max_tokens=64",
    "https://generativelanguage.googleapis.com/v1beta/batches?pageSize=2&pageToken=CiRiYXRj",
    "see https://docs.example/search?q=api+key&lang=en for how to get one",
    "contact admin@example.com or see mailto:ops@example.com",
    "claude-sonnet-4-5-20250929 via anthropic/claude-sonnet-4-5",
    "gemini-2.5-flash-preview-05-20",
    "$env.OPENAI_API_KEY",
    "keyring:relay/openai",
    "Bearer short",
    "",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_mask_leaves_ordinary_text_alone(text: str) -> None:
    assert mask(text) == text


# ---------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://admin:secret@10.0.0.5:8081/v1", "http://***@10.0.0.5:8081/v1"),
        ("https://token@host.example/v1", "https://***@host.example/v1"),
        (
            "https://h.example/v1?api_key=k1&model=m&access_token=t2",
            "https://h.example/v1?api_key=***&model=m&access_token=***",
        ),
        (
            "https://h.example/p?key=AIzaNotReallyAKey&alt=sse",
            "https://h.example/p?key=***&alt=sse",
        ),
        (
            "https://b.s3.amazonaws.com/o?X-Amz-Credential=AKID%2F2026&X-Amz-Signature=abc123"
            "&X-Amz-Security-Token=tok&X-Amz-Date=20261206",
            "https://b.s3.amazonaws.com/o?X-Amz-Credential=***&X-Amz-Signature=***"
            "&X-Amz-Security-Token=***&X-Amz-Date=20261206",
        ),
        (
            "https://acct.blob.example/c?sv=2024&sig=Zm9vYmFy%3D",
            "https://acct.blob.example/c?sv=2024&sig=***",
        ),
        (
            "https://h.example/cb?code=oauth-code&state=s1#frag",
            "https://h.example/cb?code=***&state=s1#frag",
        ),
        (
            "https://h.example/x?password=hunter22&client_secret=cs",
            "https://h.example/x?password=***&client_secret=***",
        ),
    ],
)
def test_redact_url_strips_userinfo_and_credential_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_mask_strips_url_credentials_inside_any_text() -> None:
    text = "pool backend http://admin:secret@10.0.0.5/v1 failed; retry at https://h/v1?token=t0k"
    assert (
        mask(text) == "pool backend http://***@10.0.0.5/v1 failed; retry at https://h/v1?token=***"
    )


@pytest.mark.parametrize(
    "name",
    ["key", "api_key", "API-KEY", "apikey", "access_token", "token", "X-Amz-Signature",
     "x-amz-credential", "sig", "signature", "client_secret", "password", "OPENAI_API_KEY",
     "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "Ocp-Apim-Subscription-Key"],
)  # fmt: skip
def test_credential_names(name: str) -> None:
    assert is_credential_name(name)


@pytest.mark.parametrize(
    "name",
    ["model", "page", "alt", "q", "state", "X-Amz-Date", "sv", "HOME", "max_tokens",
     "pageToken", "nextPageToken", "continuation_token"],
)  # fmt: skip
def test_ordinary_names_are_not_credential_names(name: str) -> None:
    assert not is_credential_name(name)


# ---------------------------------------------------------------------------- looks_like_api_key


@pytest.mark.parametrize(
    "value",
    [
        *KEYS.values(),
        "Bearer abcdefghijklmnop1234",
        "abcd1234efgh5678ijkl9012mnop3456",  # Mistral-like: 32 letters and digits
        "0f3c9a7be1d24c6f8a5b2e9d7c1f4a6b",  # 32 hex digits
        "r8_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpM",
    ],
)
def test_key_shapes_look_like_keys(value: str) -> None:
    assert looks_like_api_key(value)


@pytest.mark.parametrize(
    "value",
    [
        "$env.OPENAI_API_KEY",
        "keyring:relay/openai",
        "file:~/.key",
        "file:~/.config/relay/openai.key",
        "password",
        "hunter2",
        "abcdefghijklmnopqrstuvwxyzabcdef",  # long, but no digits: a word, not a key
        "https://api.example.com/v1/chat/completions",
        "https://example.com/blog/ask-the-expert-series-part-2",
        "http://127.0.0.1:8081/v1?model=llama&page=2&stream=true&max_tokens=64",
        "https://generativelanguage.googleapis.com/v1beta/batches?pageSize=2&pageToken=CiRiYXRj",
        "see https://docs.example/search?q=api+key&lang=en for how to get one",
        "contact admin@example.com or see mailto:ops@example.com",
        "ORD-2024-000123",
        "2024-06-01T12:00:00Z",
        "123e4567-e89b-12d3-a456-426614174000",
        # Header values a catalog really sets (anthropic-beta):
        "interleaved-thinking-2025-05-14",
        "prompt-caching-2024-07-31",
        "claude-sonnet-4-5-20250929",
        "task-management-system-overview",
    ],
)
def test_references_words_and_ids_do_not_look_like_keys(value: str) -> None:
    assert not looks_like_api_key(value)


# ---------------------------------------------------------------------------- logging


@pytest.fixture
def log_output(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], io.StringIO]]:
    """Configure Relay's logging into a StringIO; undo every global change afterwards."""
    relay_logger = logging.getLogger("relay")
    level = relay_logger.level
    monkeypatch.setattr(relay_log, "_renderer", relay_log._renderer)  # restored at teardown
    handlers: list[logging.Handler] = []

    def configure(format: str, level: str = "DEBUG") -> io.StringIO:
        stream = io.StringIO()
        handlers.append(configure_logging(format=format, stream=stream, level=level))
        return stream

    yield configure
    for handler in handlers:
        relay_logger.removeHandler(handler)
    relay_logger.setLevel(level)


class Holder:
    """An object whose repr shows what it holds, as careless reprs do."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Holder(value={self.value!r})"


def _log_everything() -> None:
    log = get_logger("relay.test")
    key = KEYS["anthropic"]
    log.warning(
        "sending request",
        key=SECRET_VALUE,
        secret=SECRET,
        nested={"k": [SECRET_VALUE, (1, key)], SECRET_VALUE: {"deeper": SECRET_VALUE}},
        err=repr(RuntimeError(f"bad key {SECRET_VALUE}")),
        holder=Holder(SECRET_VALUE),
        header=f"Bearer {SECRET_VALUE}",
        unregistered=f"user pasted {key}",
        count=3,
        ratio=0.5,
        flag=True,
        nothing=None,
    )
    log.info(f"event text with {SECRET_VALUE} in it")
    try:
        raise RuntimeError(f"provider said: Incorrect API key provided: {SECRET_VALUE}")
    except RuntimeError:
        log.error("call failed", exc_info=True, attempt=2)
    try:
        raise ValueError("sk-proj-AbCdEf_123-XyZ987654321abcdefGHIJ was rejected")
    except ValueError:
        log.debug("literal key in the traceback source", exc_info=True)


LEAKS = [SECRET_VALUE, KEYS["anthropic"], "sk-proj-AbCdEf_123-XyZ987654321abcdefGHIJ"]


def test_json_log_lines_hold_no_secret(log_output: Callable[[str], io.StringIO]) -> None:
    stream = log_output("json")
    _log_everything()
    output = stream.getvalue()
    for leak in LEAKS:
        assert leak not in output
    records = [json.loads(line) for line in output.splitlines()]  # one JSON object a line
    assert [record["event"] for record in records] == [
        "sending request",
        "event text with *** in it",
        "call failed",
        "literal key in the traceback source",
    ]
    first, _, failed, literal = records
    assert first["level"] == "warning"
    assert first["key"] == "***"
    assert first["secret"] == "Secret(***, source='$env.TEST_KEY')"
    assert first["nested"] == {"k": ["***", [1, "***"]], "***": {"deeper": "***"}}
    assert first["err"] == "RuntimeError('bad key ***')"
    assert first["holder"] == "Holder(value='***')"
    assert first["header"] == "Bearer ***"
    assert first["unregistered"] == "user pasted ***"
    assert (first["count"], first["ratio"], first["flag"], first["nothing"]) == (3, 0.5, True, None)
    assert failed["level"] == "error"
    assert failed["attempt"] == 2
    assert "Traceback (most recent call last)" in failed["exception"]
    assert "RuntimeError: provider said: Incorrect API key provided: ***" in failed["exception"]
    assert "ValueError: *** was rejected" in literal["exception"]


def test_console_log_lines_hold_no_secret(log_output: Callable[[str], io.StringIO]) -> None:
    stream = log_output("console")
    _log_everything()
    output = stream.getvalue()
    for leak in LEAKS:
        assert leak not in output
    assert "sending request" in output
    assert "call failed" in output
    assert "Incorrect API key provided: ***" in output


def test_records_below_the_level_are_not_written(
    log_output: Callable[[str], io.StringIO],
) -> None:
    stream = log_output("json", level="WARNING")
    log = get_logger("test.quiet")  # names outside "relay" are put under it
    log.debug("too detailed")
    log.info("still too detailed")
    log.warning("worth saying")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == [
        "worth saying"
    ]
