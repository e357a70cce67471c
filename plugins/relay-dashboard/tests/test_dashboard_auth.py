"""Beyond localhost every read needs the token: each route of the app (enumerated, so a
route added later is covered at once) without it, with a wrong one, and with it; the
login form, its cookie and its defences against other sites."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_workspace import make_hub, submit_one
from starlette.routing import Mount, Route

import relay_dashboard._auth
from relay_dashboard import Settings, create_app

TOKEN = "dash-0a1b2c3d4e5f6a7b"
JOB = "private-job"
# What must never reach a caller without the token: a prompt, an answer, a description.
DATA = ("Question 1 of private-job", "Confidential description")
ORIGIN = "http://dash.example:8765"


@pytest.fixture(scope="module")
def private_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("private")
    submit_one(directory, JOB, description=DATA[1])
    return directory


@pytest.fixture
async def make_api(private_workspace: Path) -> AsyncIterator[Callable[..., Any]]:
    """``make_api(settings, base_url)``: (app, client) on the private workspace."""
    hub = make_hub()
    made: list[tuple[Any, httpx.AsyncClient]] = []

    def make(
        settings: Settings | None = None, base_url: str = ORIGIN
    ) -> tuple[Any, httpx.AsyncClient]:
        app = create_app(
            private_workspace, settings or Settings(host="0.0.0.0", token=TOKEN), hub=hub
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
        made.append((app, client))
        return app, client

    yield make
    for app, client in made:
        await client.aclose()
        await app.state.dashboard.close()
    await hub.aclose()


def requests_of(app: Any) -> Iterator[tuple[str, str]]:
    """(method, path) for every route the app serves, a real job id in each path."""
    for route in app.routes:
        if isinstance(route, Mount):
            yield "GET", route.path + "/dashboard.js"
        elif isinstance(route, Route):
            path = route.path.replace("{job_id}", JOB)
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield method, path
        else:  # a kind of route this test does not know how to call: make it learn
            raise AssertionError(f"unknown route type {route!r}")


def no_data(response: httpx.Response) -> None:
    for secret in (*DATA, TOKEN):
        assert secret not in response.text, (response.request.url, secret)
    assert "relay_dashboard_session" not in response.headers.get("set-cookie", "")


WRONG = [
    {},
    {"authorization": "Bearer wrong-token-0000000000"},
    {"authorization": f"Bearer {TOKEN}x"},
    {"authorization": f"Basic {TOKEN}"},
    {"cookie": "relay_dashboard_session=0123456789abcdef"},
]


@pytest.mark.parametrize("headers", WRONG, ids=["none", "wrong", "longer", "basic", "cookie"])
async def test_beyond_localhost_no_route_gives_data_without_the_token(
    make_api: Callable[..., Any], headers: dict[str, str]
) -> None:
    app, api = make_api()
    public = set()
    seen = 0
    for method, path in requests_of(app):
        response = await api.request(method, path, headers={**headers, "x-relay-dashboard": "1"})
        no_data(response)
        seen += 1
        if response.status_code in (401, 403):
            continue
        public.add(path)
        assert response.status_code in (200, 404), (method, path, response.status_code)
    # Only the login form and the page's script and style answer without the token.
    assert public == {"/login", "/static/dashboard.js"}
    assert seen >= 10
    # Nothing was done either: the job is still as it was.
    good = {"authorization": f"Bearer {TOKEN}"}
    assert (await api.get(f"/api/jobs/{JOB}", headers=good)).json()["status"] == "completed"


async def test_with_the_token_in_the_header_every_read_answers(
    make_api: Callable[..., Any],
) -> None:
    app, api = make_api()
    good = {"authorization": f"Bearer {TOKEN}"}
    for method, path in requests_of(app):
        if method == "GET":
            response = await api.get(path, headers=good)
            assert response.status_code == 200, (path, response.text)
    page = await api.get(f"/jobs/{JOB}", headers=good)
    assert DATA[0] in page.text
    download = await api.get(f"/api/jobs/{JOB}/results.jsonl", headers=good)
    assert download.text.count("\n") == 3


async def test_the_token_is_compared_in_constant_time(
    make_api: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[bytes] = []
    real = relay_dashboard._auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(relay_dashboard._auth.hmac, "compare_digest", spy)
    _, api = make_api()
    response = await api.get("/api/jobs", headers={"authorization": "Bearer guess"})
    assert response.status_code == 401
    assert compared == [b"guess"]


def _cookie_attributes(response: httpx.Response, name: str) -> set[str]:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return {part.strip().lower() for part in header.split(";")[1:]}
    raise AssertionError(f"no {name} cookie set: {response.headers}")


async def _login(
    api: httpx.AsyncClient, token: str, *, next_path: str = f"/jobs/{JOB}", **headers: str
) -> httpx.Response:
    form = await api.get("/login", params={"next": next_path})
    assert form.status_code == 200
    no_data(form)
    csrf = api.cookies["relay_dashboard_login"]
    assert f'value="{csrf}"' in form.text
    return await api.post(
        "/login",
        content=str(httpx.QueryParams({"token": token, "csrf": csrf, "next": next_path})),
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
    )


async def test_the_login_form_sets_a_strict_http_only_cookie_that_reads_then_use(
    make_api: Callable[..., Any],
) -> None:
    _, api = make_api()
    # A page opened without the token is the login form (401), naming where to go next.
    first = await api.get(f"/jobs/{JOB}")
    assert first.status_code == 401
    assert 'action="/login"' in first.text
    no_data(first)

    response = await _login(api, TOKEN, origin=ORIGIN)
    assert response.status_code == 303
    assert response.headers["location"] == f"/jobs/{JOB}"
    attributes = _cookie_attributes(response, "relay_dashboard_session")
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    assert TOKEN not in response.headers["set-cookie"]  # the cookie is not the token

    page = await api.get(f"/jobs/{JOB}")
    assert page.status_code == 200
    assert DATA[0] in page.text
    assert (await api.get("/api/jobs")).json()["count"] == 1


async def test_over_https_the_cookie_is_secure(make_api: Callable[..., Any]) -> None:
    _, api = make_api(base_url="https://dash.example")
    response = await _login(api, TOKEN, origin="https://dash.example")
    assert response.status_code == 303
    assert "secure" in _cookie_attributes(response, "relay_dashboard_session")


async def test_a_wrong_token_at_the_login_gets_401_and_no_cookie(
    make_api: Callable[..., Any],
) -> None:
    _, api = make_api()
    response = await _login(api, "not-the-token")
    assert response.status_code == 401
    assert "That is not this dashboard" in response.text
    no_data(response)
    assert (await api.get(f"/jobs/{JOB}")).status_code == 401


@pytest.mark.parametrize(
    "attack",
    ["no csrf", "other origin", "cross-site fetch", "null origin"],
)
async def test_the_login_form_refuses_posts_from_other_sites(
    make_api: Callable[..., Any], attack: str
) -> None:
    _, api = make_api()
    form = {"token": TOKEN, "next": "/"}
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if attack != "no csrf":
        await api.get("/login")
        form["csrf"] = api.cookies["relay_dashboard_login"]
    if attack == "other origin":
        headers["origin"] = "https://evil.example"
    elif attack == "cross-site fetch":
        headers["sec-fetch-site"] = "cross-site"
    elif attack == "null origin":
        headers["origin"] = "null"
    response = await api.post("/login", content=str(httpx.QueryParams(form)), headers=headers)
    assert response.status_code == 403
    no_data(response)


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
async def test_after_the_login_next_stays_on_the_dashboard(
    make_api: Callable[..., Any], target: str
) -> None:
    _, api = make_api()
    response = await _login(api, TOKEN, next_path=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_a_token_in_a_page_url_logs_in_and_leaves_the_address(
    make_api: Callable[..., Any],
) -> None:
    _, api = make_api()
    response = await api.get("/", params={"token": TOKEN, "status": "completed"})
    assert response.status_code == 303
    assert response.headers["location"] == "/?status=completed"
    assert "httponly" in _cookie_attributes(response, "relay_dashboard_session")
    assert (await api.get("/?status=completed")).status_code == 200


async def test_a_cookie_stops_working_when_the_token_changes(
    make_api: Callable[..., Any],
) -> None:
    _, old = make_api()
    assert (await _login(old, TOKEN)).status_code == 303
    _, new = make_api(Settings(host="0.0.0.0", token=TOKEN + "-rotated"))
    new.cookies = old.cookies
    assert (await new.get("/api/jobs")).status_code == 401


async def test_after_the_login_the_actions_take_the_cookie(
    make_api: Callable[..., Any],
) -> None:
    _, api = make_api()
    assert (await _login(api, TOKEN)).status_code == 303
    # The cookie proves the token; the header still keeps other sites' forms out.
    refused = await api.post(f"/api/jobs/{JOB}/refresh")
    assert refused.status_code == 403
    response = await api.post(f"/api/jobs/{JOB}/refresh", headers={"x-relay-dashboard": "1"})
    assert response.status_code == 200, response.text
