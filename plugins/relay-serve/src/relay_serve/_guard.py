"""Requests a web browser was made to send: refused before any route sees them.

An open relay-serve on 127.0.0.1 spends the operator's credit for whoever reaches it,
and every web page the operator visits can make their browser reach it. Two checks stop
that, on every route:

- ``Host`` must name this server (a loopback name, the address the connection came in
  on, or a name in ``allowed_hosts``): a hostile page can point its own DNS name at
  127.0.0.1 (DNS rebinding), and its requests then carry that name.
- A browser request from another site (an ``Origin`` that is not the server's own, or
  ``Sec-Fetch-Site: cross-site`` / ``same-site``) is refused unless its origin is in
  ``cors_origins``; those get CORS headers from Starlette's ``CORSMiddleware``.

Clients that are not browsers (the SDKs, curl) send neither header and pass. The
route's own content-type check (JSON only) closes the form posts and ``text/plain``
fetches that browsers send without asking.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from relay_serve._wire import error_body

__all__ = ["BrowserGuard", "bound_names", "host_name"]

_LOOPBACK_NAMES = frozenset({"localhost"})
# Binding to these means every interface: no Host header names them.
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
# Fetch metadata values that say a browser sent the request for a page of another origin.
_CROSS = frozenset({"cross-site", "same-site"})


def host_name(host: str) -> str:
    """``host`` (a Host header, or a configured name) as compared: lowercase, without
    port, IPv6 brackets or a trailing dot. ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def bound_names(host: str | None) -> tuple[str, ...]:
    """The host names a server bound to ``host`` answers for by that binding: the name
    itself, unless it is a wildcard address (those are covered by the address each
    connection came in on)."""
    if host is None or host_name(host) in _WILDCARDS:
        return ()
    return (host_name(host),)


def _addresses(local: str) -> set[str]:
    """``local`` and, for an IPv4 client of a server bound to ``::``, the IPv4 address
    it used (``::ffff:10.0.0.7`` -> ``10.0.0.7``)."""
    try:
        mapped = getattr(ipaddress.ip_address(local), "ipv4_mapped", None)
    except ValueError:
        return {local}
    return {local} if mapped is None else {local, str(mapped)}


def _is_loopback(name: str) -> bool:
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class BrowserGuard:
    """ASGI middleware refusing requests for another host name (421) and browser requests
    from other origins (403), in OpenAI's error shape."""

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Iterable[str], cors_origins: Iterable[str]
    ) -> None:
        self.app = app
        self.hosts = frozenset(host_name(host) for host in allowed_hosts)
        self.origins = frozenset(cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                status, message = refusal
                await _answer(send, status, message)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host")
        # Browsers always send Host; a client that sends none is no rebinding page.
        if host is not None and not self._host_allowed(host_name(host), scope):
            return (
                421,
                f"This server does not answer for the host name {host_name(host)!r}; its "
                "operator can add it to plugins.serve.allowed_hosts.",
            )
        origin = headers.get("origin")
        if origin is not None:
            if origin in self.origins or self._same_origin(origin, host, scope):
                return None
            return 403, _cross_origin(origin)
        if headers.get("sec-fetch-site", "").lower() in _CROSS:
            return 403, _cross_origin(None)
        return None

    def _host_allowed(self, name: str, scope: Scope) -> bool:
        if "*" in self.hosts or name in self.hosts or _is_loopback(name):
            return True
        # The address the client connected to, as on a server bound to 0.0.0.0 and called
        # by its IP address: a rebinding page cannot make its Host header an address.
        server = scope.get("server")
        return server is not None and name in _addresses(host_name(str(server[0])))

    @staticmethod
    def _same_origin(origin: str, host: str | None, scope: Scope) -> bool:
        own = f"{scope.get('scheme', 'http')}://{host}"
        return host is not None and origin.lower() == own.lower()


def _cross_origin(origin: str | None) -> str:
    who = f"the origin {origin!r}" if origin is not None else "another site"
    return (
        f"This server refuses requests a web browser sends for {who}; its operator can "
        "allow an origin in plugins.serve.cors_origins."
    )


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps(error_body(message, "invalid_request_error")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
