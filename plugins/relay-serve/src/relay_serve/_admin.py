"""The admin API: keys made, listed, revoked and rotated over HTTP, for admin keys only.

Mounted by :func:`relay_serve.create_app` only when ``plugins.serve.admin_keys`` is set
(otherwise every ``/admin/*`` path is 404, as for any unknown path)::

    GET  /admin/keys[?revoked=true]   the keys (never a secret nor a hash)
    POST /admin/keys                  {"name": ..., "team", "models", "requests_per_minute",
                                       "tokens_per_minute", "max_concurrent", "budget",
                                       "expires"}  ->  201 with "key" (shown once)
    POST /admin/keys/{name}/revoke
    POST /admin/keys/{name}/rotate    {"grace": "1h"} (optional)  ->  the new "key"

An admin key goes in ``Authorization: Bearer``, compared in constant time with every
admin key; a client key is refused (403), a wrong one 401. Errors are OpenAI's error
object. Other admin routes (``/admin/spend``) wrap their handler in :func:`admin_only`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay_core.plugin import get_logger
from relay_serve._auth import Gatekeeper, Unauthorized
from relay_serve._keyfields import FIELDS, FieldError, check_name, parse_duration, read_fields
from relay_serve._keystore import KeyExists, KeyNotFound, KeyStore, KeyStoreUnavailable, NewKey
from relay_serve._settings import ApiKey
from relay_serve._wire import error_body

__all__ = ["AdminGuard", "AdminRefused", "admin_only", "admin_routes"]

# Admin bodies are a few fields: far below a chat body's limit.
MAX_ADMIN_BODY = 64 * 1024

_log = get_logger("relay.serve.admin")

Handler = Callable[[Request], Awaitable[Response]]


class AdminRefused(Exception):
    """A request the admin API answers with an error; :meth:`response` is it."""

    def __init__(
        self, status: int, message: str, code: str | None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param

    def response(self) -> Response:
        kind = "invalid_request_error"
        body = error_body(str(self), kind, param=self.param, code=self.code)
        return JSONResponse(body, status_code=self.status)


class AdminGuard:
    """Who may use the admin API: ``admin_keys``; ``gatekeeper`` tells a client key
    (403) from a wrong one (401)."""

    def __init__(self, admin_keys: Sequence[ApiKey], gatekeeper: Gatekeeper) -> None:
        self._keys = tuple(admin_keys)
        self._gatekeeper = gatekeeper

    async def __call__(self, request: Request) -> ApiKey:
        """The admin key ``request`` presents; :class:`AdminRefused` otherwise."""
        authorization = request.headers.get("authorization")
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AdminRefused(
                401,
                "You didn't provide an admin key. Send it as 'Authorization: Bearer KEY'.",
                None,
            )
        presented = hashlib.sha256(token.encode()).digest()
        found: ApiKey | None = None
        for key in self._keys:  # every one, without stopping: timing says nothing
            if hmac.compare_digest(presented, key.digest):
                found = key
        if found is not None:
            return found
        try:
            await self._gatekeeper.identify(authorization)
        except Unauthorized:
            raise AdminRefused(401, "Incorrect admin key provided.", "invalid_api_key") from None
        raise AdminRefused(
            403,
            "This is a client key; the admin API needs an admin key.",
            "insufficient_permissions",
        )


def admin_only(
    guard: AdminGuard, handler: Callable[[Request, ApiKey], Awaitable[Response]]
) -> Handler:
    """``handler(request, admin_key)`` as a route endpoint that only admin keys reach."""

    async def endpoint(request: Request) -> Response:
        try:
            admin = await guard(request)
            return await handler(request, admin)
        except AdminRefused as refused:
            return refused.response()
        except KeyStoreUnavailable:
            return AdminRefused(503, "The key store is unavailable; retry.", None).response()
        except Exception as error:
            # A database failure, say: the details are for the operator's log only.
            _log.error("serve.admin_failed", error=type(error).__name__, exc_info=True)
            return AdminRefused(
                500, "The admin request failed; see the server's log.", None
            ).response()

    return endpoint


def admin_routes(guard: AdminGuard, store: KeyStore) -> list[Route]:
    """The ``/admin/keys`` routes over ``store``."""
    keys = _KeysApi(store)
    return [
        Route("/admin/keys", admin_only(guard, keys.listing), methods=["GET"]),
        Route("/admin/keys", admin_only(guard, keys.create), methods=["POST"]),
        Route("/admin/keys/{name}/revoke", admin_only(guard, keys.revoke), methods=["POST"]),
        Route("/admin/keys/{name}/rotate", admin_only(guard, keys.rotate), methods=["POST"]),
    ]


class _KeysApi:
    def __init__(self, store: KeyStore) -> None:
        self.store = store

    async def listing(self, request: Request, admin: ApiKey) -> Response:
        revoked = request.query_params.get("revoked", "").lower() in ("1", "true", "yes")
        records = await asyncio.to_thread(self.store.list, revoked=revoked)
        return JSONResponse({"object": "list", "data": [r.as_json() for r in records]})

    async def create(self, request: Request, admin: ApiKey) -> Response:
        body = await _json_body(request)
        for field in body:
            if field != "name" and field not in FIELDS:
                raise AdminRefused(
                    400,
                    f"Unknown field {field!r}; a key takes name, {', '.join(FIELDS)}.",
                    "invalid_value",
                    field,
                )
        try:
            name = check_name(body.get("name"))
            fields = read_fields(body)
            made = await asyncio.to_thread(self.store.create, name, fields)
        except FieldError as error:
            raise AdminRefused(400, str(error), "invalid_value", error.field) from None
        except KeyExists as error:
            raise AdminRefused(409, str(error), "key_exists", "name") from None
        _log.info("serve.admin", admin=admin.name, action="create", key=made.record.name)
        return _made(made, 201)

    async def revoke(self, request: Request, admin: ApiKey) -> Response:
        name = request.path_params["name"]
        try:
            count = await asyncio.to_thread(self.store.revoke, name)
        except KeyNotFound as error:
            raise AdminRefused(404, str(error), "key_not_found") from None
        _log.info("serve.admin", admin=admin.name, action="revoke", key=name)
        return JSONResponse({"name": name, "revoked": count})

    async def rotate(self, request: Request, admin: ApiKey) -> Response:
        name = request.path_params["name"]
        body = await _json_body(request, optional=True)
        try:
            grace = parse_duration(body.get("grace", 0))
            made = await asyncio.to_thread(self.store.rotate, name, grace)
        except FieldError as error:
            raise AdminRefused(400, str(error), "invalid_value", error.field) from None
        except KeyNotFound as error:
            raise AdminRefused(404, str(error), "key_not_found") from None
        _log.info("serve.admin", admin=admin.name, action="rotate", key=name, grace=grace)
        return _made(made, 200)


def _made(made: NewKey, status: int) -> Response:
    return JSONResponse({"key": made.secret, **made.record.as_json()}, status_code=status)


async def _json_body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object, read up to :data:`MAX_ADMIN_BODY` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_ADMIN_BODY:
            raise AdminRefused(
                413, f"The body is larger than {MAX_ADMIN_BODY} bytes.", "request_too_large"
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip() and optional:
        return {}
    # JSON only: a browser may post forms to any address without asking first.
    given = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if given != "application/json":
        raise AdminRefused(
            415, "The body must be JSON (Content-Type: application/json).", "unsupported_media_type"
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise AdminRefused(400, "The body is not valid JSON.", "invalid_json") from None
    if not isinstance(body, dict):
        raise AdminRefused(400, "The body must be a JSON object.", "invalid_json")
    return body
