"""The catalog's ``plugins.audit`` mapping, checked strictly."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
from attrs import frozen

from relay_audit._record import OPTIONAL
from relay_core.plugin import ConfigError, CredentialRef

if TYPE_CHECKING:
    from relay_core.plugin import Location, Secret

__all__ = ["MIN_KEY_LENGTH", "Settings", "SinkSpec", "resolve_key"]

# An HMAC key shorter than this is guessable offline from one record: refused.
MIN_KEY_LENGTH = 16

Where = tuple[str | int, ...]
# Builds the error for a bad setting at a path below plugins.audit.
ErrorAt = Callable[[str, Where], ConfigError]

SinkType = Literal["jsonl", "sqlite", "stdout"]
_SINK_KEYS: dict[str, tuple[str, ...]] = {
    "jsonl": ("type", "path", "fsync"),
    "sqlite": ("type", "path", "timeout"),
    "stdout": ("type",),
}
_KEYS = ("sinks", "include_content", "fields", "hmac_key")


@frozen
class SinkSpec:
    """One sink as the catalog describes it. ``path`` is absolute (a relative one is
    taken from the directory the process started in, ``~`` expanded)."""

    type: SinkType
    path: Path | None = None
    fsync: bool = True
    timeout: float = 5.0


@frozen
class Settings:
    """What ``plugins.audit`` says, with every default filled in."""

    sinks: tuple[SinkSpec, ...]
    include_content: bool = False
    fields: frozenset[str] | None = None
    # Keys the JSONL chain (an HMAC per record); resolved when the plugin is built.
    hmac_key: CredentialRef | None = None

    @classmethod
    def parse(cls, raw: object, error: ErrorAt | None = None) -> Settings:
        """Check ``raw``; a bad setting raises the :class:`ConfigError` that ``error``
        builds for its path below ``plugins.audit`` (by default one that names it)."""
        fail = error or _named
        if not isinstance(raw, Mapping):
            raise fail("plugins.audit must be a mapping with a list of sinks", ())
        for key in raw:
            if key not in _KEYS:
                raise fail(
                    f"plugins.audit has no setting {key!r}; the settings are {', '.join(_KEYS)}",
                    (str(key),),
                )
        include_content = raw.get("include_content", False)
        if not isinstance(include_content, bool):
            raise fail("include_content must be true or false", ("include_content",))
        sinks = _sinks(raw.get("sinks"), fail)
        return cls(
            sinks=sinks,
            include_content=include_content,
            fields=_fields(raw["fields"], fail) if "fields" in raw else None,
            hmac_key=_hmac_key(raw["hmac_key"], sinks, fail) if "hmac_key" in raw else None,
        )


def resolve_key(reference: CredentialRef, where: Location | None = None) -> Secret:
    """The chain key behind ``reference``: a :class:`~relay_core.CredentialError` naming
    the reference (never the value) when it cannot be resolved or is too short."""
    from relay_core.plugin import CredentialError, PluginRegistry, resolve_credential

    # The built-in schemes (env, file, keyring) need no entry points; another scheme
    # needs the plugin that registers it.
    registry = PluginRegistry(autoload=False)
    if registry.credential_resolver(reference.scheme) is None:
        registry = PluginRegistry()
    key = resolve_credential(reference, registry, where=where)
    if len(key.reveal()) < MIN_KEY_LENGTH:
        raise CredentialError(
            f"the audit key {reference} is shorter than {MIN_KEY_LENGTH} characters; "
            "use a long random one (e.g. `openssl rand -hex 32`)",
            **(attrs.asdict(where) if where is not None else {}),
        )
    return key


def _hmac_key(raw: Any, sinks: tuple[SinkSpec, ...], fail: ErrorAt) -> CredentialRef:
    if not isinstance(raw, str):
        raise fail(
            "hmac_key must be a credential reference such as env:RELAY_AUDIT_KEY", ("hmac_key",)
        )
    try:
        reference = CredentialRef.parse(raw)
    except ValueError as error:
        raise fail(f"hmac_key: {error}", ("hmac_key",)) from None
    if not any(spec.type == "jsonl" for spec in sinks):
        raise fail("hmac_key keys the JSONL hash chain, and no sink is jsonl", ("hmac_key",))
    return reference


def _named(message: str, at: Where) -> ConfigError:
    where = ".".join(["plugins", "audit", *(str(p) for p in at)])
    return ConfigError(f"{where}: {message}" if at else message)


def _sinks(raw: Any, fail: ErrorAt) -> tuple[SinkSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail(
            "sinks must list at least one sink, e.g. [{type: jsonl, path: audit.jsonl}]",
            ("sinks",),
        )
    specs: list[SinkSpec] = []
    paths: dict[Path, int] = {}
    for index, item in enumerate(raw):
        at: Where = ("sinks", index)
        if not isinstance(item, Mapping):
            raise fail("a sink is a mapping with a type: jsonl, sqlite or stdout", at)
        kind = item.get("type")
        if kind not in _SINK_KEYS:
            raise fail(
                f"unknown sink type {kind!r}; the types are jsonl, sqlite and stdout",
                (*at, "type"),
            )
        for key in item:
            if key not in _SINK_KEYS[kind]:
                raise fail(
                    f"a {kind} sink has no setting {key!r}; its settings are "
                    f"{', '.join(_SINK_KEYS[kind])}",
                    (*at, str(key)),
                )
        if kind == "stdout" and any(s.type == "stdout" for s in specs):
            raise fail("stdout is already a sink", (*at, "type"))
        spec = SinkSpec(type=kind)
        if kind in ("jsonl", "sqlite"):
            path = item.get("path")
            if not isinstance(path, str) or not path.strip():
                raise fail(f"a {kind} sink needs a path: the file to write", (*at, "path"))
            resolved = Path(path).expanduser().absolute()
            if resolved in paths:
                raise fail(f"{path!r} is already written by sink {paths[resolved]}", (*at, "path"))
            paths[resolved] = index
            spec = SinkSpec(type=kind, path=resolved)
        if kind == "jsonl":
            fsync = item.get("fsync", True)
            if not isinstance(fsync, bool):
                raise fail("fsync must be true or false", (*at, "fsync"))
            spec = SinkSpec(type=kind, path=spec.path, fsync=fsync)
        if kind == "sqlite":
            timeout = item.get("timeout", 5.0)
            if (
                not isinstance(timeout, (int, float))
                or isinstance(timeout, bool)
                or not 0 < timeout < math.inf
            ):
                raise fail("timeout must be a number of seconds above 0", (*at, "timeout"))
            spec = SinkSpec(type=kind, path=spec.path, timeout=float(timeout))
        specs.append(spec)
    return tuple(specs)


def _fields(raw: Any, fail: ErrorAt) -> frozenset[str]:
    if not isinstance(raw, list):
        raise fail(f"fields must be a list of record fields: {', '.join(OPTIONAL)}", ("fields",))
    for index, name in enumerate(raw):
        if name not in OPTIONAL:
            raise fail(
                f"{name!r} is not a record field to choose; choose from {', '.join(OPTIONAL)}",
                ("fields", index),
            )
    return frozenset(raw)
