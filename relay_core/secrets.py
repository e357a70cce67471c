"""Secrets: a wrapper that will not print itself, and the masking every message passes through.

A resolved credential is held in a :class:`Secret`. Creating one registers its value, so
that :func:`mask` can blank it out of any text afterwards (log lines, error messages,
provider answers that echo a key back). Text that merely *looks* like a provider key is
masked as well, so a key that never went through Relay (pasted into a prompt, say) is not
logged either, and so are the credentials a URL carries (``http://user:password@host``,
``?api_key=...``): :func:`redact_url` for one URL, :func:`mask` for URLs inside any text.
"""

from __future__ import annotations

import re
import threading

__all__ = [
    "MASK",
    "Secret",
    "has_known_key_shape",
    "is_credential_name",
    "looks_like_api_key",
    "mask",
    "redact_url",
    "remember",
]

MASK = "***"

# Shapes of well-known provider keys, plus "Bearer <token>" in echoed headers. The pattern
# errs towards masking: a false positive costs a few characters of a log line. A key starts
# a token: the "sk-" inside "task-management-system" is not a key.
_KEY_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])"
    r"(?:sk-(?:ant-|proj-|or-)?[A-Za-z0-9_\-]{16,}"
    r"|AIza[0-9A-Za-z_\-]{30,}"
    r"|gsk_[A-Za-z0-9]{20,}"
    r"|xai-[A-Za-z0-9]{20,}"
    # AWS access key ids (long-term AKIA, temporary ASIA) and Google OAuth access tokens.
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"
    r"|ya29\.[A-Za-z0-9_\-]{20,}"
    # A service account's private key: the whole PEM block when it is all there.
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)?"
    r"|(?<=[Bb][Ee][Aa][Rr][Ee][Rr] )[A-Za-z0-9._\-]{12,})"
)
# A token with no spaces, long, mixing letters and digits, with a long unbroken run of
# letters and digits: how inline keys usually look. The run rules out dashed words and
# dates ("interleaved-thinking-2025-05-14") and UUIDs.
_OPAQUE_TOKEN = re.compile(r"^[A-Za-z0-9_\-.+=]{24,}$")
_OPAQUE_RUN = re.compile(r"[A-Za-z0-9]{16}")

# URL credentials: the userinfo before the host, and query parameters whose name says
# they hold a credential. Matched in free text too, so a URL quoted in an error is masked.
_URL_USERINFO = re.compile(r"(?<=://)[^\s/?#@\"'<>]+@")
_QUERY_PARAM = re.compile(r"(?<=[?&;])([A-Za-z0-9_.\-]+)=([^&#\s\"'<>]*)")
# Names whose value is a credential in every API we know of: exact short ones (Google's
# ``key``, Azure SAS's ``sig``) and words that appear inside longer names
# (``api_key``, ``X-Amz-Credential``, ``access_token``, ``client_secret``).
_CREDENTIAL_NAMES = frozenset({"key", "sig", "code", "pwd", "pass", "auth", "apikey"})
_CREDENTIAL_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "credential",
    "authorization",
    "apikey",
    "accesskey",
    "privatekey",
    "sessionkey",
    "subscriptionkey",
)

_known: set[str] = set()
_known_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()

# Shorter values are too likely to occur in ordinary text to be masked by value.
_MIN_MASKED_LENGTH = 6


def _register(value: str) -> None:
    global _known_pattern
    if len(value) < _MIN_MASKED_LENGTH or value in _known:
        return
    with _lock:
        _known.add(value)
        ordered = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))


def remember(value: str) -> None:
    """Mask ``value`` in every log line, error and file from now on: for a credential a
    plugin reads itself (an AWS secret key, a session token) rather than from a
    :class:`Secret`, which remembers its value on creation."""
    _register(value)


def mask(text: str) -> str:
    """Return ``text`` with every known secret, every key-shaped token and every
    credential a URL carries replaced by ``***``."""
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _KEY_PATTERN.sub(MASK, text)
    if "://" in text:
        text = _URL_USERINFO.sub(MASK + "@", text)
    if "=" in text:
        text = _QUERY_PARAM.sub(_masked_param, text)
    return text


def is_credential_name(name: str) -> bool:
    """True when a query parameter, header or field called ``name`` holds a credential
    (``key``, ``api_key``, ``access_token``, ``X-Amz-Signature``, ``sig``...), whatever
    its case and separators."""
    folded = re.sub(r"[^a-z0-9]", "", name.lower())
    # Tokens that are not credentials: a count (max_tokens) and a page cursor
    # (pageToken, nextPageToken, continuation_token).
    words = folded
    for harmless in ("tokens", "pagetoken", "nexttoken", "continuationtoken"):
        words = words.replace(harmless, "")
    return folded in _CREDENTIAL_NAMES or any(word in words for word in _CREDENTIAL_WORDS)


def redact_url(url: str) -> str:
    """``url`` as it may be shown: no ``user:password@``, the value of every credential
    query parameter and every known secret masked. Use it wherever a URL is printed,
    logged, exported or stored (``/health``, metrics labels, errors)."""
    return mask(url)


def _masked_param(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    if not value or value == MASK or not is_credential_name(name):
        return match.group(0)
    return f"{name}={MASK}"


def has_known_key_shape(value: str) -> bool:
    """True when ``value`` contains a key in a well-known provider format (``sk-...``,
    ``AIza...``...): certain enough to refuse even where opaque ids are legitimate."""
    return _KEY_PATTERN.search(value) is not None


def looks_like_api_key(value: str) -> bool:
    """True when ``value`` has the shape of an API key rather than of a reference or a word."""
    if has_known_key_shape(value):
        return True
    if "/" in value or not _OPAQUE_TOKEN.match(value) or not _OPAQUE_RUN.search(value):
        return False
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


class Secret:
    """A credential value that never shows itself in ``str``, ``repr``, logs or errors.

    Call :meth:`reveal` at the one place the value is sent (an HTTP header). Two secrets
    compare equal when their values do, so settings holding them remain comparable.
    """

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, *, source: str = "") -> None:
        self._value = value
        self._source = source
        _register(value)

    def reveal(self) -> str:
        """The plain value: pass it straight to the wire, never to a message."""
        return self._value

    @property
    def source(self) -> str:
        """Where the value came from, e.g. ``$env.OPENAI_API_KEY``; safe to show."""
        return self._source

    def __repr__(self) -> str:
        return f"Secret({MASK}, source={self._source!r})" if self._source else f"Secret({MASK})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")
