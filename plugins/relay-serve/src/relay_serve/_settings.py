"""The catalog's ``plugins.serve`` section, checked: API keys, load limits and who
may send requests.

::

    plugins:
      serve:
        keys:
          - {name: ci, hash: "sha256:<64 hex digits>", requests_per_minute: 60}
          - {name: app, hash: "sha256:...", team: ml, models: [fast, "openai/*"],
             tokens_per_minute: 100000, max_concurrent: 8, budget: [50/month, 5/day],
             expires: 2027-01-01}
        database: relay-serve.db   # keys made by `relay keys` (default: beside the catalog)
        admin_keys:                # who may use /admin/* (absent: no admin API, 404)
          - {name: ops, hash: "sha256:<64 hex digits>"}
        max_concurrency: 16     # upstream calls at once
        max_queue: 64           # requests waiting for a slot; beyond that, 429 at once
        max_body_bytes: 4194304 # a larger request body is refused (413) while it arrives
        allowed_hosts: [relay.internal]         # Host names answered besides loopback's
        cors_origins: [https://app.example.com] # web pages that may call the server
        header_timeout: 10      # seconds for a client to send its request line and headers
        body_timeout: 30        # then seconds for its body; past either, it is disconnected
        max_connections: null   # open connections at most (null: half the open-file limit)
        teams:                  # budgets shared by every key of a team
          ml: {budget: 500/month}
        state: redis://127.0.0.1:6379/0  # limits shared by every worker and replica
        on_state_error: closed  # while that store is down: closed (503) or open (local limits)
        state_timeout: 1        # seconds a store's answer may take before it counts as down

Every mistake is a ``relay_core.ConfigError`` pointing at its line. A value that
might be a key itself is never repeated in a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import ipaddress
import math
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
from attrs import frozen

from relay_core.plugin import Catalog
from relay_serve import _FIELDS

__all__ = [
    "FIELDS",
    "ApiKey",
    "Budget",
    "Limits",
    "ServeSettings",
    "default_database",
    "hash_key",
    "new_key",
]

FIELDS = _FIELDS
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
# A host name or IPv4 address as a Host header carries it, without the port (IPv6
# addresses are checked by ipaddress); "*" answers any.
_HOST = re.compile(r"^(\*|[a-z0-9_.-]+)$")
# An origin as browsers send it: scheme, host and optional port, nothing after.
_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(:[0-9]{1,5})?$")
# Generated keys start like the keys Relay already masks ("sk-..."), so one that strays
# into a log line or an error is blanked like any provider key.
_KEY_PREFIX = "sk-relay-"


def hash_key(key: str) -> str:
    """The catalog form of ``key``: ``sha256:<hex>``.

    A plain SHA-256 suffices because keys made by :func:`new_key` carry 256 random bits:
    there is nothing to guess that a slow hash would protect. Do not store hashes of
    short, human-chosen keys.
    """
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A new random API key (256 bits)."""
    return _KEY_PREFIX + secrets.token_urlsafe(32)


Period = Literal["day", "month", "total"]


@frozen
class Budget:
    """At most ``dollars`` of spend (Relay's own cost) per calendar ``period`` (UTC), or
    in ``total``."""

    dollars: float
    period: Period = "month"


@frozen(kw_only=True)
class Limits:
    """What one key (or team) may use; ``None`` or empty: no limit of that kind."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    #: Requests of this key being answered at once, across every worker and replica.
    max_concurrent: int | None = None
    #: Aliases and ``provider/model`` names the key may call (``fnmatch`` patterns);
    #: empty: every model.
    models: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    budgets: tuple[Budget, ...] = attrs.field(default=(), converter=tuple)


@frozen
class ApiKey:
    """One client key: its name (for logs, metrics, audit and spend), the SHA-256 of its
    value, its team (whose budgets it also spends from), its limits, and when it
    expires (a UTC POSIX time; ``None``: never)."""

    name: str
    digest: bytes = attrs.field(repr=False)
    requests_per_minute: int | None = None
    limits: Limits = attrs.field(factory=Limits, kw_only=True)
    team: str | None = attrs.field(default=None, kw_only=True)
    expires_at: float | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        # requests_per_minute predates Limits; both spellings mean one limit.
        if self.requests_per_minute is not None and self.limits.requests_per_minute is None:
            limits = attrs.evolve(self.limits, requests_per_minute=self.requests_per_minute)
            object.__setattr__(self, "limits", limits)
        elif self.requests_per_minute is None and self.limits.requests_per_minute is not None:
            object.__setattr__(self, "requests_per_minute", self.limits.requests_per_minute)

    @classmethod
    def from_key(
        cls,
        name: str,
        key: str,
        requests_per_minute: int | None = None,
        **fields: Any,
    ) -> ApiKey:
        """An entry for a known key value (for code and tests; catalogs hold hashes)."""
        digest = bytes.fromhex(hash_key(key).removeprefix("sha256:"))
        return cls(name, digest, requests_per_minute, **fields)


def _whole(value: object, low: int) -> bool:
    return type(value) is int and value >= low


def _seconds(value: object) -> bool:
    # bool is an int, but `header_timeout: yes` is a mistake, not one second.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value > 0


@frozen(kw_only=True)
class ServeSettings:
    """What relay-serve reads from ``plugins.serve``; build it in code for
    :func:`relay_serve.create_app`, or with :meth:`from_catalog`."""

    keys: tuple[ApiKey, ...] = ()
    max_concurrency: int = attrs.field(default=16)
    max_queue: int = attrs.field(default=64)
    max_body_bytes: int = attrs.field(default=DEFAULT_MAX_BODY_BYTES)
    #: Host names answered besides loopback's and the address a connection came in on
    #: (lowercase, no port); ``"*"`` answers any name.
    allowed_hosts: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    #: Origins (``https://app.example.com``) whose pages may call the server from a browser.
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    header_timeout: float = attrs.field(default=10.0)
    body_timeout: float = attrs.field(default=30.0)
    max_connections: int | None = attrs.field(default=None)
    #: The budgets of each team, by name (``teams: {ml: {budget: 500/month}}``); a key
    #: of a team spends from them as well as from its own.
    teams: Mapping[str, tuple[Budget, ...]] = attrs.field(factory=dict)
    #: The key store (and spend ledger): a SQLite path, ``sqlite:///path``,
    #: ``postgresql://...`` or ``$env.NAME`` holding one of those; None: none.
    database: str | None = attrs.field(default=None, repr=lambda url: repr(_shown(url)))
    #: Keys of the admin API (``/admin/*``); empty: no admin API.
    admin_keys: tuple[ApiKey, ...] = attrs.field(default=(), converter=tuple)
    #: ``redis://...``: the store shared by every worker and replica for per-key limits;
    #: ``None``: each process counts alone (right for one worker).
    state: str | None = attrs.field(default=None, repr=False)
    #: While that store is down: ``closed`` refuses requests (503), ``open`` admits them
    #: under this process's own limits.
    on_state_error: Literal["closed", "open"] = attrs.field(default="closed")
    state_timeout: float = attrs.field(default=1.0)

    @state.validator
    def _check_state(self, _: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None and _state_problem(value):
            raise ValueError(f"state: {_state_problem(value)}")

    @on_state_error.validator
    def _check_policy(self, _: attrs.Attribute[str], value: str) -> None:
        if value not in _POLICIES:
            raise ValueError(f"on_state_error must be closed or open, not {value!r}")

    @max_concurrency.validator
    def _check_concurrency(self, _: attrs.Attribute[int], value: int) -> None:
        if not _whole(value, 1):
            raise ValueError(f"max_concurrency must be a whole number >= 1, not {value!r}")

    @max_queue.validator
    def _check_queue(self, _: attrs.Attribute[int], value: int) -> None:
        if not _whole(value, 0):
            raise ValueError(f"max_queue must be a whole number >= 0, not {value!r}")

    @max_body_bytes.validator
    def _check_body(self, _: attrs.Attribute[int], value: int) -> None:
        if not _whole(value, 1):
            raise ValueError(f"max_body_bytes must be a whole number >= 1, not {value!r}")

    @allowed_hosts.validator
    def _check_hosts(self, _: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
        for host in value:
            if _host_problem(host):
                raise ValueError(f"allowed_hosts: {_host_problem(host)}")

    @cors_origins.validator
    def _check_origins(self, _: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
        for origin in value:
            if _origin_problem(origin):
                raise ValueError(f"cors_origins: {_origin_problem(origin)}")

    @header_timeout.validator
    @body_timeout.validator
    @state_timeout.validator
    def _check_timeout(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not _seconds(value):
            raise ValueError(f"{attribute.name} must be a number of seconds > 0, not {value!r}")

    @max_connections.validator
    def _check_connections(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and not _whole(value, 1):
            raise ValueError(f"max_connections must be a whole number >= 1 or null, not {value!r}")

    @property
    def open(self) -> bool:
        """True when no keys are configured nor a key store: every client is let in."""
        return not self.keys and self.database is None

    @property
    def shared_state(self) -> bool:
        """True when limits are counted in a store every worker shares (``state``)."""
        return self.state is not None

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> ServeSettings:
        """The checked ``plugins.serve`` of ``catalog`` (defaults when absent)."""
        at: tuple[str | int, ...] = ("plugins", "serve")
        section = catalog.plugins.get("serve")
        if section is None:
            return cls(database=_database(catalog, {}, (*at, "database"), False))
        if not isinstance(section, Mapping):
            raise catalog.error("plugins.serve must be a mapping", at)
        known = FIELDS
        for name in section:
            if name not in known:
                raise catalog.error(
                    f"plugins.serve: unknown setting {name!r}; it takes {', '.join(known)}",
                    (*at, name),
                )
        values: dict[str, Any] = {}
        for name, low in (("max_concurrency", 1), ("max_queue", 0), ("max_body_bytes", 1)):
            if name in section:
                if not _whole(section[name], low):
                    raise catalog.error(
                        f"plugins.serve.{name} must be a whole number >= {low}, "
                        f"not {section[name]!r}",
                        (*at, name),
                    )
                values[name] = section[name]
        for name in ("header_timeout", "body_timeout", "state_timeout"):
            if name in section:
                if not _seconds(section[name]):
                    raise catalog.error(
                        f"plugins.serve.{name} must be a number of seconds > 0, "
                        f"not {section[name]!r}",
                        (*at, name),
                    )
                values[name] = float(section[name])
        if section.get("max_connections") is not None:
            if not _whole(section["max_connections"], 1):
                raise catalog.error(
                    "plugins.serve.max_connections must be a whole number >= 1 or null, "
                    f"not {section['max_connections']!r}",
                    (*at, "max_connections"),
                )
            values["max_connections"] = section["max_connections"]
        values.update(_state(catalog, section, at))
        values["keys"] = _keys(catalog, section.get("keys", []), (*at, "keys"))
        admins = _keys(catalog, section.get("admin_keys", []), (*at, "admin_keys"), admin=True)
        if {key.digest for key in admins} & {key.digest for key in values["keys"]}:
            raise catalog.error(
                "plugins.serve.admin_keys: an admin key is also a client key; give it its own",
                (*at, "admin_keys"),
            )
        values["admin_keys"] = admins
        if "teams" in section:
            from relay_serve._budgets import parse_teams

            values["teams"] = parse_teams(catalog, section["teams"], (*at, "teams"))
        # Budgets are kept against the durable spend ledger, as admin keys need a store.
        budgeted = values.get("teams") or any(key.limits.budgets for key in values["keys"])
        needed = bool(admins or budgeted)
        values["database"] = _database(catalog, section, (*at, "database"), needed)
        for name, problem in (("allowed_hosts", _host_problem), ("cors_origins", _origin_problem)):
            if name in section:
                values[name] = _names(catalog, section[name], (*at, name), problem)
        return cls(**values)


_POLICIES = ("closed", "open")


def _state_problem(url: str) -> str | None:
    # Never echo the value: a Redis URL may carry a password.
    if url.startswith(("redis://", "rediss://", "unix://")) and len(url) > len("unix://"):
        return None
    return "must be a Redis URL: redis://host:port/db (rediss:// for TLS, unix:// for a socket)"


def _state(
    catalog: Catalog, section: Mapping[str, Any], at: tuple[str | int, ...]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    url = section.get("state")
    if url is not None:
        if not isinstance(url, str) or _state_problem(url):
            raise catalog.error(f"plugins.serve.state {_state_problem('')}", (*at, "state"))
        if importlib.util.find_spec("redis") is None:
            raise catalog.error(
                "plugins.serve.state needs the redis client: pip install 'relay-serve[redis]'",
                (*at, "state"),
            )
        values["state"] = url
    if "on_state_error" in section:
        policy = section["on_state_error"]
        if policy not in _POLICIES:
            raise catalog.error(
                f"plugins.serve.on_state_error must be closed or open, not {policy!r}",
                (*at, "on_state_error"),
            )
        values["on_state_error"] = policy
    return values


def _host_problem(host: str) -> str | None:
    if _HOST.match(host):
        return None
    if ":" in host:
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).version == 6:
                return None
    return f"{host!r} is not a host name (lowercase, without scheme, port or path)"


def _origin_problem(origin: str) -> str | None:
    if _ORIGIN.match(origin):
        return None
    return (
        f"{origin!r} is not an origin: scheme, lowercase host and optional port, "
        "like https://app.example.com or http://localhost:3000"
    )


def _names(
    catalog: Catalog,
    entries: object,
    at: tuple[str | int, ...],
    problem: Callable[[str], str | None],
) -> tuple[str, ...]:
    label = "plugins.serve." + str(at[-1])
    if not isinstance(entries, list):
        raise catalog.error(f"{label} must be a list of strings", at)
    for index, entry in enumerate(entries):
        if not isinstance(entry, str):
            raise catalog.error(f"{label}[{index}] must be a string, not {entry!r}", (*at, index))
        wrong = problem(entry)
        if wrong:
            raise catalog.error(f"{label}[{index}]: {wrong}", (*at, index))
    return tuple(entries)


def _keys(
    catalog: Catalog, entries: object, at: tuple[str | int, ...], *, admin: bool = False
) -> tuple[ApiKey, ...]:
    from relay_serve._keyfields import FIELDS as KEY_FIELDS
    from relay_serve._keyfields import FieldError, read_fields

    setting = "plugins.serve." + str(at[-1])
    if not isinstance(entries, list):
        raise catalog.error(f"{setting} must be a list of {{name, hash}} entries", at)
    allowed = ("name", "hash") if admin else ("name", "hash", *KEY_FIELDS)
    keys: list[ApiKey] = []
    for index, entry in enumerate(entries):
        where = (*at, index)
        label = f"{setting}[{index}]"
        if not isinstance(entry, Mapping):
            raise catalog.error(f"{label} must be a mapping with name and hash", where)
        for field in entry:
            if field not in allowed:
                raise catalog.error(
                    f"{label}: unknown field {field!r}; a key takes {', '.join(allowed)}",
                    (*where, field),
                )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise catalog.error(f"{label}.name must be a non-empty string", (*where, "name"))
        if any(key.name == name for key in keys):
            raise catalog.error(f"{label}: the name {name!r} is used twice", (*where, "name"))
        digest = entry.get("hash")
        if not isinstance(digest, str) or not _HASH.match(digest):
            # Never echo the value: it may be a key pasted where its hash belongs.
            raise catalog.error(
                f"{label}.hash must be 'sha256:' and 64 lowercase hex digits (the key's hash, "
                "never the key: `relay serve-key` prints both)",
                (*where, "hash"),
            )
        fields = {field: entry[field] for field in KEY_FIELDS if field in entry and not admin}
        try:
            # No `expires: 30d` here: a catalog read twice must mean the same moment.
            read = read_fields(fields, relative=False)
        except FieldError as error:
            raise catalog.error(f"{label}.{error}", (*where, error.field)) from None
        keys.append(
            ApiKey(
                name,
                bytes.fromhex(digest.removeprefix("sha256:")),
                limits=read.limits,
                team=read.team,
                expires_at=read.expires_at,
            )
        )
    if len({key.digest for key in keys}) != len(keys):
        raise catalog.error(f"{setting}: two entries have the same hash", at)
    return tuple(keys)


_DEFAULT_DATABASE = "relay-serve.db"
_ENV_REFERENCE = re.compile(r"^\$env\.[A-Za-z_][A-Za-z0-9_]*$")


def default_database(catalog: Catalog) -> str:
    """Where the key store is when ``plugins.serve.database`` does not say: beside the
    catalog file, or in the working directory for a catalog built in code."""
    if catalog.path and Path(catalog.path).is_file():
        return str(Path(catalog.path).resolve().parent / _DEFAULT_DATABASE)
    return str(Path.cwd() / _DEFAULT_DATABASE)


def _database(
    catalog: Catalog, section: Mapping[str, Any], at: tuple[str | int, ...], needed: bool
) -> str | None:
    """The checked ``database`` setting. Without one, the default file is used once it
    exists (``relay keys create`` makes it), or when the admin API or a budget needs
    somewhere to keep keys and spend; otherwise the server has no key store nor
    ledger, and opens no file."""
    if "database" not in section or section["database"] is None:
        default = default_database(catalog)
        return default if needed or Path(default).exists() else None
    value = section["database"]
    if not isinstance(value, str) or not value.strip():
        raise catalog.error(
            "plugins.serve.database must be a file path, sqlite:///path, postgresql://... "
            "or $env.NAME",
            at,
        )
    if value.startswith("$env."):
        if not _ENV_REFERENCE.match(value):
            raise catalog.error(f"plugins.serve.database: {value!r} is not $env.NAME", at)
        return value
    if value.startswith(("postgresql://", "postgres://")):
        if _shown(value) != value:
            # Never echo the URL: the password is in it.
            raise catalog.error(
                "plugins.serve.database holds a password; the catalog must not: write "
                "database: $env.NAME (a variable holding the URL), or give the password "
                "in PGPASSWORD or ~/.pgpass",
                at,
            )
        return value
    if "://" in value and not value.startswith("sqlite:///"):
        raise catalog.error(
            "plugins.serve.database must be a file path, sqlite:///path or postgresql://...",
            at,
        )
    path = Path(os.path.expanduser(value.removeprefix("sqlite:///")))
    if not path.is_absolute() and catalog.path and Path(catalog.path).is_file():
        path = Path(catalog.path).resolve().parent / path  # beside the catalog, wherever relay runs
    return str(path)


def _shown(url: str | None) -> str | None:
    """``url`` without the password it may hold."""
    if url is None or "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.partition(':')[0]}:***@{host}"
