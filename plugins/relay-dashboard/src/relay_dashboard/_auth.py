"""Who may read and act: the token, the session cookie a login gives, the login form.

A dashboard reachable beyond this machine shows prompts and answers, so every page and
API read there needs the token too: as ``Authorization: Bearer <token>`` (scripts), or
as the session cookie the login form sets (browsers). The cookie holds an HMAC of a
fixed label keyed by the token, never the token itself: it proves the token was shown,
it stops working when the token changes, and the server keeps no session state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from relay_core.plugin import Secret
from relay_dashboard import _html

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "authorised",
    "login",
    "login_form",
    "token_matches",
    "with_session",
]

SESSION_COOKIE = "relay_dashboard_session"
# The login form's double-submit value: a page on another site can neither read this
# cookie nor set it, so it cannot post a form that carries the matching field.
CSRF_COOKIE = "relay_dashboard_login"
_SESSION_LABEL = b"relay-dashboard session v1"
_MAX_FORM_BYTES = 8192
_SESSION_SECONDS = 12 * 3600


def token_matches(given: str, token: Secret) -> bool:
    # compare_digest takes as long whatever the first wrong byte, so the answer's timing
    # does not leak the token one character at a time.
    return hmac.compare_digest(given.encode(), token.reveal().encode())


def _session_value(token: Secret) -> str:
    return hmac.new(token.reveal().encode(), _SESSION_LABEL, hashlib.sha256).hexdigest()


def _bearer(request: Request) -> str | None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given if scheme.lower() == "bearer" else None


def authorised(request: Request, token: Secret) -> bool:
    """Whether ``request`` shows the token: the header, or the session cookie."""
    given = _bearer(request)
    if given is not None:
        return token_matches(given, token)
    session = request.cookies.get(SESSION_COOKIE)
    return session is not None and hmac.compare_digest(
        session.encode(), _session_value(token).encode()
    )


def _local_path(target: str) -> str:
    """``target`` when it is a path on this server, else ``/``: the login form must
    not become a redirector to another site (``//evil.example``, ``https://...``)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target:
        return "/"
    return target


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def login_form(
    request: Request,
    next_path: str,
    *,
    status: int = 401,
    message: str = "",
    data: Mapping[str, object],
) -> Response:
    """The login page (no workspace data on it), with a double-submit value; after the
    login the browser goes on to ``next_path``."""
    target = _local_path(next_path)
    nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    page = _html.login_page(next_path=target, csrf=nonce, message=message, data=data)
    response = HTMLResponse(page, status_code=status)
    response.set_cookie(
        CSRF_COOKIE,
        nonce,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


def _same_origin(request: Request) -> bool:
    """Whether a browser says the form was posted from this dashboard's own page."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    # No Sec-Fetch-Site (an older browser, a script): judge by Origin. Our pages send no
    # referrer, so browsers send "Origin: null" on our own form, and they say
    # same-origin beside it; a bare "null" is a sandboxed frame and is refused.
    origin = request.headers.get("origin")
    if origin is None:
        return True
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin.lower() == expected.lower()


async def login(request: Request, token: Secret | None, data: Mapping[str, object]) -> Response:
    """``POST /login``: check the form, then set the session cookie and go on."""
    if token is None:
        return HTMLResponse("this dashboard has no token to log in with", status_code=404)
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > _MAX_FORM_BYTES:
            return HTMLResponse("the login form is too large", status_code=413)
    fields = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if (
        not _same_origin(request)
        or not cookie
        or not hmac.compare_digest(fields.get("csrf", "").encode(), cookie.encode())
    ):
        return login_form(
            request,
            fields.get("next", "/"),
            status=403,
            message="The login form expired or came from another site; try again.",
            data=data,
        )
    if not token_matches(fields.get("token", ""), token):
        return login_form(
            request,
            fields.get("next", "/"),
            message="That is not this dashboard's token.",
            data=data,
        )
    return with_session(RedirectResponse(_local_path(fields.get("next", "/")), 303), request, token)


def with_session(response: Response, request: Request, token: Secret) -> Response:
    """``response``, setting the cookie that stands for the token from now on."""
    response.set_cookie(
        SESSION_COOKIE,
        _session_value(token),
        max_age=_SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(CSRF_COOKIE, path="/login")
    return response
