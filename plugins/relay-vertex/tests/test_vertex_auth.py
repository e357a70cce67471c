"""Google credentials: a service-account key's token reaches Vertex, is reused until it
nears expiry, is refreshed then; application-default credentials; google-auth imported
only when a call needs a token; neither the private key nor a token in any error, repr
or log line."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from vertex_support import GLOBAL, MODEL, PROJECT, REGIONAL, TokenServer, answer, google_error

from relay_core import AuthenticationError, ConfigError, Hub, ProviderUnavailable
from relay_core.testing import FakeServer, json_answer


def _grant_assertion(server: TokenServer, index: int) -> str:
    grant = server.grants[index]
    assert grant["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    return grant["assertion"][0]


def test_the_service_account_token_reaches_vertex_and_is_reused(
    make_hub: Callable[..., Hub], catalog: Callable[..., str], token_server: TokenServer
) -> None:
    vertex = FakeServer(json_answer(answer([{"text": "Paris"}])))
    with make_hub(catalog(project=PROJECT), vertex) as hub:
        assert hub.chat(f"vertex/{MODEL}", "Capital of France?").text == "Paris"
        hub.chat(f"vertex/{MODEL}", "Again?")
    assert len(token_server.grants) == 1  # one token, kept for the second call
    assert _grant_assertion(token_server, 0).count(".") == 2  # a signed JWT
    for request in vertex.requests:
        assert request.headers["authorization"] == "Bearer vertex-token-1"
        assert str(request.url) == f"{GLOBAL}/publishers/google/models/{MODEL}:generateContent"


def test_a_token_near_its_expiry_is_refreshed_before_use(
    make_hub: Callable[..., Hub], catalog: Callable[..., str], token_server: TokenServer
) -> None:
    token_server.expires_in = 120  # less than the five minutes kept in hand
    vertex = FakeServer(json_answer(answer([{"text": "ok"}])))
    with make_hub(catalog(project=PROJECT), vertex) as hub:
        hub.chat(f"vertex/{MODEL}", "one")
        hub.chat(f"vertex/{MODEL}", "two")
    assert len(token_server.grants) == 2
    assert [r.headers["authorization"] for r in vertex.requests] == [
        "Bearer vertex-token-1",
        "Bearer vertex-token-2",
    ]


def test_the_openai_endpoint_gets_the_same_token_at_its_own_url(
    make_hub: Callable[..., Hub], catalog: Callable[..., str], token_server: TokenServer
) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "meta/llama-3.3-70b-instruct-maas",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    server = FakeServer(json_answer(body))
    with make_hub(catalog(project=PROJECT), server) as hub:
        assert hub.chat("vertex-openai/meta/llama-3.3-70b-instruct-maas", "Hello").text == "Hi"
    request = server.requests[0]
    assert str(request.url) == f"{REGIONAL}/endpoints/openapi/chat/completions"
    assert request.headers["authorization"] == "Bearer vertex-token-1"
    assert server.payload["model"] == "meta/llama-3.3-70b-instruct-maas"


def test_application_default_credentials_give_the_project_too(
    make_hub: Callable[..., Hub],
    key_file: Path,
    token_server: TokenServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    vertex = FakeServer(json_answer(answer([{"text": "ok"}])))
    with make_hub("providers: {vertex: {options: {location: europe-west4}}}", vertex) as hub:
        hub.chat(f"vertex/{MODEL}", "hi")
    assert str(vertex.requests[0].url) == (
        f"https://europe-west4-aiplatform.googleapis.com/v1/projects/{PROJECT}"
        f"/locations/europe-west4/publishers/google/models/{MODEL}:generateContent"
    )
    assert vertex.requests[0].headers["authorization"] == "Bearer vertex-token-1"


def test_the_environment_names_project_and_location(
    make_hub: Callable[..., Hub],
    catalog: Callable[..., str],
    token_server: TokenServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "other-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "eu")
    vertex = FakeServer(json_answer(answer([{"text": "ok"}])))
    with make_hub(catalog(), vertex) as hub:
        hub.chat(f"vertex/google/{MODEL}", "hi")
    assert str(vertex.requests[0].url) == (
        "https://aiplatform.eu.rep.googleapis.com/v1/projects/other-project/locations/eu"
        f"/publishers/google/models/{MODEL}:generateContent"
    )


def test_a_refused_key_is_an_authentication_error_that_shows_no_secret(
    make_hub: Callable[..., Hub],
    catalog: Callable[..., str],
    token_server: TokenServer,
    private_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token_server.refuse(
        400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    )
    vertex = FakeServer(json_answer(answer([{"text": "never"}])))
    caplog.set_level(logging.DEBUG)
    with (
        make_hub(catalog(project=PROJECT), vertex) as hub,
        pytest.raises(AuthenticationError) as caught,
    ):
        hub.chat(f"vertex/{MODEL}", "hi")
    assert "invalid_grant" in str(caught.value)
    assert vertex.requests == []  # nothing went to Vertex without a token
    secret_lines = private_key.strip().splitlines()[1:-1]
    for text in (str(caught.value), repr(caught.value), caught.value.provider_message, caplog.text):
        assert not any(line in text for line in secret_lines)


def test_a_token_vertex_rejects_never_shows(
    make_hub: Callable[..., Hub],
    catalog: Callable[..., str],
    token_server: TokenServer,
    private_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An answer that echoes the header it was sent, as a proxy's error page might.
    def echo(request: httpx.Request) -> httpx.Response:
        message = (
            f"Request had invalid authentication credentials: {request.headers['authorization']}"
        )
        return json_answer(google_error(401, "UNAUTHENTICATED", message), 401)

    caplog.set_level(logging.DEBUG)
    with (
        make_hub(catalog(project=PROJECT), echo) as hub,
        pytest.raises(AuthenticationError) as caught,
    ):
        hub.chat(f"vertex/{MODEL}", "hi")
    with make_hub(catalog(project=PROJECT), echo) as hub:
        adapter = hub.get(f"vertex/{MODEL}").adapter
        shown = [repr(adapter.settings), repr(adapter.auth), repr(adapter.settings.api_key)]
    for text in (
        str(caught.value),
        repr(caught.value),
        caught.value.provider_message,
        caplog.text,
        *shown,
    ):
        assert "vertex-token-1" not in text
        assert "PRIVATE KEY" not in text


def test_an_unreachable_token_endpoint_is_provider_unavailable(
    make_hub: Callable[..., Hub], tmp_path: Path, private_key: str
) -> None:
    from vertex_support import service_account

    key = tmp_path / "sa.json"
    # A port nothing listens on: connecting is refused at once.
    key.write_text(json.dumps(service_account("http://127.0.0.1:9/token", private_key)))
    text = "providers: " + json.dumps(
        {"vertex": {"api_key": f"file:{key}", "max_retries": 0, "options": {"project": PROJECT}}}
    )
    with (
        make_hub(text, FakeServer(json_answer({}))) as hub,
        pytest.raises(ProviderUnavailable) as caught,
    ):
        hub.chat(f"vertex/{MODEL}", "hi")
    assert caught.value.retryable


def test_an_api_key_that_is_not_credentials_json_is_a_config_error(
    make_hub: Callable[..., Hub], tmp_path: Path
) -> None:
    key = tmp_path / "key.txt"
    key.write_text("AQ.Ab8RN6ExpressModeKeyLooksLikeThis0123")
    text = "providers: " + json.dumps({"vertex": {"api_key": f"file:{key}"}})
    with make_hub(text) as hub, pytest.raises(ConfigError) as caught:
        hub.chat(f"vertex/{MODEL}", "hi")
    assert "credentials JSON" in str(caught.value)
    assert "ExpressModeKey" not in str(caught.value)


def test_google_auth_is_imported_only_when_a_call_needs_a_token(key_file: Path) -> None:
    probe = f"""
import json, sys
import relay_vertex._adapter, relay_vertex._openai
from relay_core.testing import hub_for
import relay_vertex
entry = {{"api_key": "file:{key_file}", "options": {{"project": "p-123456"}}}}
catalog = "providers: " + json.dumps({{"vertex": entry, "vertex-openai": entry}})
hub = hub_for(catalog, relay_vertex)
hub.get("vertex/gemini-2.5-flash").adapter
hub.get("vertex-openai/meta/llama-3.3-70b-instruct-maas").adapter
print(sorted(m for m in sys.modules if m == "google" or m.startswith("google.")))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


async def test_concurrent_calls_share_one_refresh(
    key_file: Path, token_server: TokenServer
) -> None:
    from relay_core import Secret
    from relay_vertex._auth import GoogleAuth

    auth = GoogleAuth("vertex", Secret(key_file.read_text()))
    tokens = await asyncio.gather(*(auth.token() for _ in range(8)))
    assert set(tokens) == {"vertex-token-1"}
    assert len(token_server.grants) == 1
