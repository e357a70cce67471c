"""What a web page can make a browser send relay-serve, refused before any upstream call:
other host names (DNS rebinding), requests from other origins, bodies that are not JSON.
With cors_origins, the pages allowed to call get CORS answers."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from serve_support import (
    CATALOG,
    CHAT,
    HELLO,
    RECORDED,
    Served,
    TroublePlugin,
    TroubleProvider,
    error_of,
)

import relay_mock
import relay_serve
from relay_core.testing import hub_for
from relay_serve import ServeSettings, create_app
from relay_serve._guard import _addresses, bound_names, host_name

Serve = Callable[..., Served]


# ---------------------------------------------------------------------------- host names


def test_a_request_for_another_host_name_is_refused(serve: Serve) -> None:
    server = serve()
    with server.http() as http:
        rebound = http.post(CHAT, json=RECORDED, headers={"host": "evil.example:8000"})
        models = http.get("/v1/models", headers={"host": "evil.example"})
    assert rebound.status_code == 421
    assert "'evil.example'" in error_of(rebound)["message"]
    assert "allowed_hosts" in error_of(rebound)["message"]
    assert models.status_code == 421
    assert TroubleProvider.calls == []


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1", "127.0.0.1:80", "[::1]:8000", "LOCALHOST"]
)
def test_loopback_names_are_answered(serve: Serve, host: str) -> None:
    with serve().http() as http:
        assert http.post(CHAT, json=HELLO, headers={"host": host}).status_code == 200


def test_allowed_hosts_are_answered_and_star_answers_any(serve: Serve) -> None:
    named = serve(settings=ServeSettings(allowed_hosts=("relay.internal",)))
    anyone = serve(settings=ServeSettings(allowed_hosts=("*",)))
    with named.http() as http:
        assert http.post(CHAT, json=HELLO, headers={"host": "relay.internal:80"}).status_code == 200
        assert http.post(CHAT, json=HELLO, headers={"host": "other.internal"}).status_code == 421
    with anyone.http() as http:
        assert http.post(CHAT, json=HELLO, headers={"host": "other.internal"}).status_code == 200


async def test_the_address_a_connection_came_in_on_is_answered() -> None:
    # A server bound to 0.0.0.0, called by its LAN address: that address is the
    # connection's own (ASGI "server"), and a rebinding page cannot send it as Host.
    hub = hub_for(CATALOG, relay_mock, relay_serve, TroublePlugin())
    transport = httpx.ASGITransport(app=create_app(hub, close_hub=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://192.168.7.9:8000") as http:
        found = await http.post(CHAT, json=HELLO)
        other = await http.post(CHAT, json=HELLO, headers={"host": "192.168.7.10:8000"})
    await hub.aclose()
    assert (found.status_code, other.status_code) == (200, 421)


async def test_the_name_the_server_is_bound_to_is_answered() -> None:
    hub = hub_for(CATALOG, relay_mock, relay_serve, TroublePlugin())
    bound_app = create_app(hub, close_hub=False, host="Relay.LAN")
    unbound_app = create_app(hub, close_hub=False)
    answers = []
    for app in (bound_app, unbound_app):
        # The connection arrives on an address; the client named the server relay.lan.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://10.1.2.3:8000") as http:
            answers.append(await http.post(CHAT, json=HELLO, headers={"host": "relay.lan"}))
    await hub.aclose()
    assert [answer.status_code for answer in answers] == [200, 421]
    assert bound_names("0.0.0.0") == bound_names("[::]") == bound_names(None) == ()


def test_host_names_compare_without_port_case_or_brackets() -> None:
    assert host_name("[::1]:8000") == "::1"
    assert host_name("Relay.Internal.:443") == "relay.internal"
    assert host_name("::1") == "::1"
    # An IPv4 client of a server bound to "::" arrives on a mapped address.
    assert _addresses("::ffff:10.0.0.7") == {"::ffff:10.0.0.7", "10.0.0.7"}
    assert _addresses("testserver") == {"testserver"}


# ---------------------------------------------------------------------------- browsers


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},  # sandboxed frames and file: pages
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "http://localhost:3000", "sec-fetch-site": "same-site"},
    ],
)
def test_browser_requests_from_other_origins_are_refused(
    serve: Serve, headers: dict[str, str]
) -> None:
    with serve().http() as http:
        answer = http.post(CHAT, json=RECORDED, headers=headers)
        models = http.get("/v1/models", headers=headers)
    assert answer.status_code == 403
    assert "cors_origins" in error_of(answer)["message"]
    assert models.status_code == 403
    assert TroubleProvider.calls == []


def test_what_a_hostile_page_sends_without_asking_is_refused(serve: Serve) -> None:
    """The three paid calls of the report: a text/plain fetch, a form post, and the same
    with no Origin (a browser that omits it, or a non-browser client)."""
    body = json.dumps(RECORDED)
    with serve().http() as http:
        fetch = http.post(
            CHAT,
            content=body,
            headers={"content-type": "text/plain;charset=UTF-8", "origin": "https://evil.ex"},
        )
        form = http.post(
            CHAT,
            data={body: ""},
            headers={"origin": "https://evil.ex", "sec-fetch-site": "cross-site"},
        )
        plain = http.post(CHAT, content=body, headers={"content-type": "text/plain"})
        untyped = http.post(CHAT, content=body)
    assert (fetch.status_code, form.status_code) == (403, 403)
    for answer in (plain, untyped):
        assert answer.status_code == 415
        assert error_of(answer)["code"] == "unsupported_media_type"
        assert "application/json" in error_of(answer)["message"]
    assert TroubleProvider.calls == []


def test_json_with_a_charset_and_same_origin_requests_pass(serve: Serve) -> None:
    server = serve()
    port = server.url.rsplit(":", 1)[1]
    with server.http() as http:
        typed = http.post(
            CHAT,
            content=json.dumps(HELLO),
            headers={"content-type": "Application/JSON; charset=utf-8"},
        )
        own = http.post(
            CHAT,
            json=HELLO,
            headers={"origin": f"http://127.0.0.1:{port}", "sec-fetch-site": "same-origin"},
        )
    assert (typed.status_code, own.status_code) == (200, 200)


def test_configured_cors_origins_may_call_and_get_cors_headers(serve: Serve) -> None:
    server = serve(settings=ServeSettings(cors_origins=("https://app.example.com",)))
    page = {"origin": "https://app.example.com", "sec-fetch-site": "cross-site"}
    with server.http() as http:
        preflight = http.options(
            CHAT,
            headers={
                **page,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        answer = http.post(CHAT, json=HELLO, headers=page)
        stranger = http.post(CHAT, json=HELLO, headers={"origin": "https://evil.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in answer.headers["access-control-expose-headers"]
    assert stranger.status_code == 403
    assert "access-control-allow-origin" not in stranger.headers
