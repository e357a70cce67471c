"""The dashboard's settings: from the call, the command line and the catalog's
``plugins.dashboard`` section, checked before anything listens."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from relay_core.plugin import ConfigError, Secret

if TYPE_CHECKING:
    from relay_core.plugin import Catalog

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Settings", "is_loopback"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_ENV = "RELAY_DASHBOARD_TOKEN"

# The settings a catalog may give; the token is not one of them, on purpose: a catalog is
# a file people commit, and the token guards who may cancel jobs.
_CATALOG_KEYS = ("host", "port", "refresh", "page_size", "read_only")


def is_loopback(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def _token(value: Secret | str | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value, source="token") if value else None


@frozen(kw_only=True)
class Settings:
    """How a dashboard serves a workspace.

    - ``host``, ``port``: where it listens (port 0: any free port).
    - ``token``: what a caller must show, as ``Authorization: Bearer <token>`` or as
      the session cookie the login form (``/login``) sets. Required when ``host`` is
      not a loopback address: every page and API read then needs it too. On loopback,
      when set, the actions (cancel, refresh) need it.
    - ``read_only``: turn the actions off (the JSON API then only reads).
    - ``refresh``: the page's default auto-refresh period in seconds (0: off).
    - ``page_size``: results per page on a job's page (the API takes ``limit`` up to 500).
    - ``catalog``: the catalog whose providers the actions talk to (a batch job's cancel
      and refresh call its provider); ``None``: bare ``provider/model`` names only.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: Secret | None = attrs.field(default=None, converter=_token)
    read_only: bool = False
    refresh: float = 30.0
    page_size: int = 50
    catalog: Catalog | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def actions(self) -> bool:
        """Whether the actions (cancel, refresh) are served: not ``read_only``."""
        return not self.read_only

    @property
    def guards_reads(self) -> bool:
        """Whether reads need the token too: the server is reachable beyond this machine,
        and its pages show every prompt and answer in the workspace."""
        return not is_loopback(self.host)

    def check(self) -> Settings:
        """These settings, or a :class:`ConfigError` saying what cannot be served."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is not a TCP port (0 to 65535)")
        if self.refresh < 0:
            raise ConfigError(f"refresh must be seconds >= 0 (0: off), not {self.refresh}")
        if not 1 <= self.page_size <= 500:
            raise ConfigError(f"page_size must be 1 to 500, not {self.page_size}")
        if self.token is None and self.guards_reads:
            raise ConfigError(
                f"the dashboard would listen on {self.host}, beyond this machine, and show "
                "every prompt and answer in the workspace"
                + ("" if self.read_only else ", and let anyone there cancel jobs")
                + f", to anyone there: give a token (--token or ${TOKEN_ENV})"
            )
        return self

    @classmethod
    def from_catalog(cls, catalog: Catalog, **overrides: Any) -> Settings:
        """Settings from ``catalog.plugins["dashboard"]``, under ``overrides`` (the
        values a caller gave; ``None`` means "not given"). Errors point at the node."""
        section = catalog.plugins.get("dashboard", {})
        where: tuple[str | int, ...] = ("plugins", "dashboard")
        if not isinstance(section, dict):
            raise catalog.error("plugins.dashboard must be a mapping of settings", where)
        values: dict[str, Any] = {}
        for key, value in section.items():
            at = (*where, key)
            if key == "token":
                raise catalog.error(
                    f"plugins.dashboard.token: keep the token out of the catalog; give it "
                    f"as ${TOKEN_ENV} or --token",
                    at,
                )
            if key not in _CATALOG_KEYS:
                raise catalog.error(
                    f"plugins.dashboard: unknown setting {key!r}; the dashboard takes "
                    + ", ".join(_CATALOG_KEYS),
                    at,
                )
            values[key] = _checked(catalog, key, value, at)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(catalog=catalog, **values)


def _checked(catalog: Catalog, key: str, value: Any, at: tuple[str | int, ...]) -> Any:
    def wrong(expected: str) -> ConfigError:
        return catalog.error(f"plugins.dashboard.{key} must be {expected}, not {value!r}", at)

    if key == "host":
        if not isinstance(value, str) or not value:
            raise wrong("a host name or address")
    elif key == "port":
        if type(value) is not int or not 0 <= value <= 65535:
            raise wrong("a TCP port, 0 to 65535")
    elif key == "page_size":
        if type(value) is not int or not 1 <= value <= 500:
            raise wrong("a whole number from 1 to 500")
    elif key == "refresh":
        if type(value) not in (int, float) or value < 0:
            raise wrong("seconds >= 0 (0: off)")
        value = float(value)
    elif key == "read_only" and type(value) is not bool:
        raise wrong("true or false")
    return value
