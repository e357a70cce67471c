"""The helpers relay_core.testing offers plugin authors: the scripted FakeServer and the
cassette player that replays recorded HTTP with nothing reaching the network. The SDK
oracle checkers are tested in test_testing_oracles.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay_core.errors import AuthenticationError
from relay_core.testing import (
    FakeServer,
    cassette_player,
    json_answer,
    json_server,
    secret_shown,
    sse_answer,
)

CASSETTE = """\
interactions:
- request:
    body: '{"model": "m-1", "messages": [{"role": "user", "content": "hi"}]}'
    headers: {}
    method: POST
    uri: https://api.acme.test/v1/chat
  response:
    body:
      string: '{"answer": "hello"}'
    headers:
      content-type:
      - application/json
    status:
      code: 200
      message: OK
version: 1
"""


@pytest.fixture
def use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.delenv("RELAY_RECORD", raising=False)
    (tmp_path / "chat.yaml").write_text(CASSETTE)
    return cassette_player(tmp_path)


def test_a_cassette_replays_a_request_whose_json_body_matches_in_any_key_order(
    use: object,
) -> None:
    with use("chat"), httpx.Client() as client:  # type: ignore[operator]
        answer = client.post(
            "https://api.acme.test/v1/chat",
            content=b'{"messages":[{"content":"hi","role":"user"}],"model":"m-1"}',
        )
    assert answer.json() == {"answer": "hello"}


def test_a_request_the_cassette_does_not_hold_fails_instead_of_going_out(use: object) -> None:
    import vcr.errors

    with (
        use("chat"),  # type: ignore[operator]
        httpx.Client() as client,
        pytest.raises(vcr.errors.CannotOverwriteExistingCassetteException),
    ):
        client.post("https://api.acme.test/v1/chat", json={"model": "m-2"})


def test_fake_server_records_requests_and_repeats_its_last_answer() -> None:
    server = FakeServer(json_answer({"n": 1}), json_answer({"error": "slow"}, 429, retry_after="2"))
    with httpx.Client(transport=server.transport) as client:
        first = client.post("https://acme.test/a", json={"q": 1})
        second = client.post("https://acme.test/b", json={"q": 2})
        third = client.post("https://acme.test/c", json={"q": 3})
    assert first.json() == {"n": 1}
    assert (second.status_code, second.headers["retry-after"]) == (429, "2")
    assert third.status_code == 429
    assert server.payloads == [{"q": 1}, {"q": 2}, {"q": 3}]
    assert server.payload == {"q": 3}


def test_fake_server_without_answers_says_which_request_it_could_not_answer() -> None:
    with (
        httpx.Client(transport=FakeServer().transport) as client,
        pytest.raises(AssertionError, match=r"no answer for GET https://acme\.test/x"),
    ):
        client.get("https://acme.test/x")


def test_sse_answer_frames_events_as_the_event_stream_format() -> None:
    answer = sse_answer([{"type": "ping"}, "raw text"], named=True, done=True)
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.content.decode() == (
        'event: ping\ndata: {"type": "ping"}\n\ndata: raw text\n\ndata: [DONE]\n\n'
    )


def test_hub_maker_answers_through_the_handler_and_closes_every_hub() -> None:
    from relay_core import Capability, Provider, Request, Response, hookimpl
    from relay_core.testing import hub_maker

    class Acme(Provider):
        name = "acme"
        capabilities = frozenset({Capability.CHAT})
        default_base_url = "https://api.acme.test"

        async def chat(self, request: Request) -> Response:
            body = await self.http.json("POST", "/chat", json={"q": request.messages[-1].text})
            return Response(content=body["answer"], model=request.model)

    class Plugin:
        @hookimpl
        def relay_register_providers(self, register: object) -> None:
            register("acme", Acme)  # type: ignore[operator]

    closed: list[object] = []
    with hub_maker(Plugin(), catalog="models: {fast: acme/m}") as make:
        hub = make(lambda request: json_answer({"answer": f"got {request.content.decode()}"}))
        real_close = hub.close
        hub.close = lambda: (closed.append(hub), real_close())[-1]  # type: ignore[method-assign]
        assert hub.chat("fast", "hi").text == 'got {"q":"hi"}'
        other = make(catalog="models: {slow: acme/n}")
        other.close = lambda: closed.append(other)  # type: ignore[method-assign] # never opened
        assert "slow" in other.catalog.models
    assert closed == [hub, other]


def test_secret_shown_names_every_place_a_key_shows() -> None:
    key = "sk-live-1234567890abcdef"
    masked = AuthenticationError(f"invalid key {key}", provider="acme")  # Relay masks it
    assert secret_shown(key, masked, "log line", "stdout") == []

    class Leaky(Exception):
        def __init__(self, message: str, provider_message: str) -> None:
            super().__init__(message)
            self.message = message
            self.provider_message = provider_message

    leaky = Leaky(f"invalid key {key}", "upstream said no")
    assert secret_shown(key, leaky, "clean log", f"GET /v1?key={key}") == [
        "str(error)",
        "repr(error)",
        "error.args",
        "error.message",
        "texts[1]",
    ]
    assert secret_shown(key, Leaky("no", key)) == ["error.provider_message"]


def test_plugin_fixtures_give_a_conftest_the_standard_fixtures(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from relay_core.testing import plugin_fixtures\n"
        "class Plugin:\n"
        "    pass\n"
        "make_hub, cassette, waits, _keys = plugin_fixtures(\n"
        "    Plugin(), cassettes='cassettes', keys={'ACME_API_KEY': 'k-1'}\n"
        ")\n"
    )
    (tmp_path / "test_it.py").write_text(
        "import os\n"
        "def test_fixtures(make_hub, cassette, waits):\n"
        "    assert make_hub().catalog is not None\n"
        "    assert callable(cassette)\n"
        "    assert waits == []\n"
        "    print('KEY', os.environ.get('ACME_API_KEY'))\n"
    )

    def run(**env: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_it.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            env={**{k: v for k, v in os.environ.items() if k != "ACME_API_KEY"}, **env},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert "KEY k-1" in run(RELAY_RECORD="none")
    assert "KEY None" in run(RELAY_RECORD="once")  # a recording uses the shell's real key


def test_recording_keeps_credential_parameters_and_known_secrets_out_of_a_cassette(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Opaque values: only their parameter's name, or the environment, says they are keys.
    secret = "envsecret0cassette0value1"
    monkeypatch.setenv("ACME_API_KEY", secret)
    url = (
        "https://api.acme.test/v1/models?api_key=apikey0value0one&access_token=tok0value0two"
        f"&X-Amz-Signature=sig0value0three&page=2&cursor={secret}"
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": []})

    monkeypatch.setenv("RELAY_RECORD", "all")
    recording = cassette_player(tmp_path)("keys")  # type: ignore[operator]
    with recording, httpx.Client(transport=httpx.MockTransport(answer)) as client:
        client.get(url, headers={"x-acme-session": secret})
    recorded = (tmp_path / "keys.yaml").read_text()
    for value in ("apikey0value0one", "tok0value0two", "sig0value0three", secret):
        assert value not in recorded
    assert "page=2" in recorded
    assert "cursor=%2A%2A%2A" in recorded
    # The cassette replays the same request: the filter applies to it as it did when recording.
    monkeypatch.setenv("RELAY_RECORD", "none")
    with cassette_player(tmp_path)("keys"), httpx.Client() as client:  # type: ignore[operator]
        assert client.get(url, headers={"x-acme-session": secret}).json() == {"data": []}


def test_json_server_answers_on_loopback_and_stops() -> None:
    seen: list[tuple[str, str, str | None]] = []

    def answer(method: str, path: str, headers: Mapping[str, str]) -> tuple[int, Any]:
        seen.append((method, path, headers.get("x-token")))
        return (404, {"error": "no"}) if path == "/missing" else (200, {"ok": True})

    with json_server(answer) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/v1/a?x=1", headers={"X-Token": "t"}).json() == {"ok": True}
        assert httpx.post(f"{url}/missing").status_code == 404
    assert seen == [("GET", "/v1/a?x=1", "t"), ("POST", "/missing", None)]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/a")
