"""The catalog's ``plugins.mcp`` section, checked: one :class:`ServerSettings` per server.

Every mistake is a :class:`relay_core.ConfigError` pointing at the node that holds it
(``relay validate`` shows file:line:column). Secrets are never read here: a value of
``env`` or ``headers`` that is a credential reference stays a reference until the server
is started (:meth:`Value.resolve`), so validating a catalog needs no secret.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from relay_core.plugin import has_known_key_shape, looks_like_api_key

if TYPE_CHECKING:
    from relay_core.plugin import Catalog, ConfigError, CredentialRef, Location

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_TIMEOUT", "ServerSettings", "Value", "parse"]

DEFAULT_TIMEOUT = 60.0
"""Seconds one tool call may take unless a server sets ``timeout``."""

DEFAULT_CONNECT_TIMEOUT = 30.0
"""Seconds to start a server and complete the MCP handshake unless ``connect_timeout``."""

# The schemes every Relay installation resolves; another scheme counts as a reference
# only when an installed plugin registers it (else "vault:x" could be a literal).
_BUILTIN_SCHEMES = ("env", "file", "keyring")
_REFERENCE = re.compile(r"^(?:\$env\.[A-Za-z_][A-Za-z0-9_]*|(?P<scheme>[a-z][a-z0-9_-]*):\S+)$")
_SERVER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SERVER_KEYS = frozenset(
    {"command", "env", "cwd", "url", "headers", "timeout", "connect_timeout", "tools", "exclude"}
    | {"prefix"}
)

Fail = Callable[[str, tuple[Any, ...]], "ConfigError"]


@frozen
class Value:
    """An ``env`` or ``headers`` value: literal text, or ``prefix`` + a credential
    reference resolved when the server starts (``"Bearer $env.TOKEN"``)."""

    text: str
    reference: CredentialRef | None = None
    where: Location | None = attrs.field(default=None, eq=False, repr=False)

    def resolve(self) -> str:
        """The value to send: the literal, or the prefix and the resolved secret.
        :class:`relay_core.CredentialError` (naming the reference and the catalog
        position, never a value) when the secret cannot be read."""
        if self.reference is None:
            return self.text
        from relay_core.plugin import resolve_credential

        return (
            self.text
            + resolve_credential(
                self.reference, _registry_for(self.reference.scheme), where=self.where
            ).reveal()
        )

    def __str__(self) -> str:
        # What logs and `relay mcp tools --json` may show: never a resolved secret.
        return self.text if self.reference is None else f"{self.text}{self.reference}"


@frozen(kw_only=True)
class ServerSettings:
    """One MCP server: started as ``command`` (stdio) or reached at ``url`` (streamable
    HTTP), with its tools filtered by ``tools``/``exclude`` and named with ``prefix``."""

    name: str
    command: tuple[str, ...] | None = None
    env: Mapping[str, Value] = attrs.field(factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, Value] = attrs.field(factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    tools: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    prefix: str = ""

    @property
    def transport(self) -> str:
        """``stdio`` or ``http``."""
        return "stdio" if self.command is not None else "http"

    def offers(self, tool: str) -> bool:
        """Whether the server's tool ``tool`` (its MCP name) is offered to models."""
        return (self.tools is None or tool in self.tools) and tool not in self.exclude


def parse(catalog: Catalog) -> dict[str, ServerSettings]:
    """The servers of ``catalog.plugins["mcp"]``, by name (empty when there is none)."""
    raw = catalog.plugins.get("mcp")
    if raw is None:
        return {}

    def fail(message: str, at: tuple[Any, ...] = ()) -> ConfigError:
        return catalog.error(message, ("plugins", "mcp", *at))

    unknown = sorted(set(raw) - {"servers"})
    if unknown:
        raise fail(f"unknown setting {unknown[0]!r} (known: servers)", (unknown[0],))
    servers = raw.get("servers", {})
    if not isinstance(servers, dict):
        raise fail("servers must be a mapping of server name to settings", ("servers",))
    return {name: _server(catalog, fail, name, settings) for name, settings in servers.items()}


def _server(catalog: Catalog, fail: Fail, name: Any, raw: Any) -> ServerSettings:
    at = ("servers", name)
    if not isinstance(name, str) or not _SERVER_NAME.match(name):
        raise fail(
            f"server name {name!r} must be 1-64 letters, digits, '_', '.' or '-' "
            "(it names the toolset)",
            at,
        )
    if not isinstance(raw, dict):
        raise fail(f"server {name!r} must be a mapping (command: [...] or url: ...)", at)
    unknown = sorted(set(raw) - _SERVER_KEYS)
    if unknown:
        known = ", ".join(sorted(_SERVER_KEYS))
        raise fail(
            f"server {name!r}: unknown setting {unknown[0]!r} (known: {known})",
            (*at, unknown[0]),
        )
    if ("command" in raw) == ("url" in raw):
        raise fail(f"server {name!r} needs exactly one of command (stdio) or url (HTTP)", at)
    if "command" in raw:
        for key in ("url", "headers"):
            if key in raw:
                raise fail(f"server {name!r}: {key} is for HTTP servers (url:)", (*at, key))
    else:
        for key in ("env", "cwd"):
            if key in raw:
                raise fail(f"server {name!r}: {key} is for stdio servers (command:)", (*at, key))

    tools = _names(fail, raw.get("tools"), (*at, "tools"))
    exclude = _names(fail, raw.get("exclude"), (*at, "exclude"))
    return ServerSettings(
        name=name,
        command=_command(fail, raw["command"], (*at, "command")) if "command" in raw else None,
        env=_values(catalog, fail, raw.get("env", {}), (*at, "env")),
        cwd=_text(fail, raw["cwd"], (*at, "cwd"), "cwd") if "cwd" in raw else None,
        url=_url(fail, raw["url"], (*at, "url")) if "url" in raw else None,
        headers=_values(catalog, fail, raw.get("headers", {}), (*at, "headers")),
        timeout=_seconds(fail, raw.get("timeout", DEFAULT_TIMEOUT), (*at, "timeout")),
        connect_timeout=_seconds(
            fail, raw.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT), (*at, "connect_timeout")
        ),
        tools=None if tools is None else frozenset(tools),
        exclude=frozenset(exclude or ()),
        prefix=_prefix(fail, name, raw.get("prefix", False), (*at, "prefix")),
    )


def _text(fail: Fail, value: Any, at: tuple[Any, ...], what: str) -> str:
    if not isinstance(value, str) or not value:
        raise fail(f"{what} must be a non-empty string", at)
    return value


def _command(fail: Fail, value: Any, at: tuple[Any, ...]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise fail("command must be a list: [executable, arguments...]", at)
    for index, part in enumerate(value):
        if not isinstance(part, str) or not part:
            raise fail("each part of command must be a non-empty string", (*at, index))
        if has_known_key_shape(part):
            raise fail(
                "this argument looks like an API key; pass secrets in env, as a reference "
                "($env.NAME)",
                (*at, index),
            )
    return tuple(value)


def _url(fail: Fail, value: Any, at: tuple[Any, ...]) -> str:
    url = _text(fail, value, at, "url")
    if not url.startswith(("http://", "https://")):
        raise fail(f"url {url!r} must start with http:// or https://", at)
    if has_known_key_shape(url):
        raise fail("the url holds what looks like a key; put it in headers, as a reference", at)
    return url


def _seconds(fail: Fail, value: Any, at: tuple[Any, ...]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise fail(f"{at[-1]} must be a number of seconds above 0, not {value!r}", at)
    return float(value)


def _names(fail: Fail, value: Any, at: tuple[Any, ...]) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(f"{at[-1]} must be a list of tool names (as the server names them)", at)
    return list(value)


def _prefix(fail: Fail, server: str, value: Any, at: tuple[Any, ...]) -> str:
    if value is False or value is None:
        return ""
    if value is True:
        return f"{server}_"
    if isinstance(value, str) and value:
        return value
    raise fail("prefix must be true (the server's name and '_'), false, or a string", at)


def _values(catalog: Catalog, fail: Fail, raw: Any, at: tuple[Any, ...]) -> dict[str, Value]:
    if not isinstance(raw, dict):
        raise fail(f"{at[-1]} must be a mapping of names to values", at)
    values: dict[str, Value] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            raise fail(f"{at[-1]}: names must be non-empty strings", (*at, key))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise fail(f"{at[-1]}[{key!r}] must be a string", (*at, key))
        values[key] = _value(catalog, fail, value, (*at, key))
    return values


def _value(catalog: Catalog, fail: Fail, text: str, at: tuple[Any, ...]) -> Value:
    """A literal, or ``[prefix ]reference``: the last word is the reference."""
    from relay_core.plugin import CredentialRef

    head, _, last = text.rpartition(" ")
    prefix = f"{head} " if head else ""
    match = _REFERENCE.match(last)
    if match is not None and (match["scheme"] is None or _is_scheme(match["scheme"])):
        try:
            reference = CredentialRef.parse(last)
        except ValueError as error:
            raise fail(str(error), at) from None
        if looks_like_api_key(prefix.strip()):
            raise fail(_INLINE_KEY, at)
        return Value(prefix, reference, catalog.where(("plugins", "mcp", *at)))
    if any(looks_like_api_key(word) for word in text.split()):
        raise fail(_INLINE_KEY, at)
    return Value(text)


_INLINE_KEY = (
    "this value looks like a secret written inline; write a credential reference "
    "($env.NAME, keyring:SERVICE/USER or file:PATH), optionally after a prefix such as "
    "'Bearer '"
)


def _is_scheme(scheme: str) -> bool:
    if scheme in _BUILTIN_SCHEMES:
        return True
    return _registry_for(scheme).credential_resolver(scheme) is not None


def _registry_for(scheme: str) -> Any:
    """A plugin registry that resolves ``scheme``: the built-in schemes need no entry
    points; another needs the plugin that registers it."""
    return _registry(autoload=scheme not in _BUILTIN_SCHEMES)


@functools.lru_cache(maxsize=2)
def _registry(*, autoload: bool) -> Any:
    from relay_core.plugin import PluginRegistry

    return PluginRegistry(autoload=autoload)
