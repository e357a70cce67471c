"""Authentication: API keys, Microsoft Entra ID tokens from a reference or from a
credential (a fake one here: no network), refreshed before they expire, fetched off the
event loop, never shown; settings checked; azure-identity imported only when needed."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure_support import DEPLOYMENT, ENDPOINT, KEY, UNAUTHORIZED, completion

from relay_core import AuthenticationError, ConfigError, CredentialError, Hub
from relay_core.testing import json_answer

TARGET = f"azure/{DEPLOYMENT}"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.relay-test-entra-token"


def catalog(options: str = "", extra: str = "") -> str:
    text = f"providers:\n  azure:\n    base_url: {ENDPOINT}\n    max_retries: 0\n{extra}"
    return text + (f"    options: {options}\n" if options else "")


class FakeToken:
    def __init__(self, token: str, expires_on: float) -> None:
        self.token = token
        self.expires_on = int(expires_on)


class FakeCredential:
    """A TokenCredential: each token lives ``lifetime`` seconds; calls are recorded."""

    def __init__(self, lifetime: float = 3600, fail: Exception | None = None) -> None:
        self.lifetime = lifetime
        self.fail = fail
        self.calls: list[tuple[str, int]] = []

    def get_token(self, *scopes: str) -> FakeToken:
        self.calls.append((scopes[0], threading.get_ident()))
        if self.fail is not None:
            raise self.fail
        return FakeToken(f"{TOKEN}-{len(self.calls)}", time.time() + self.lifetime)


class Recorder:
    """A fake Azure: answers ``status``/``body``, keeps each request's headers and the
    thread that served it."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.status, self.body = status, body or completion("ok")
        self.headers: list[httpx.Headers] = []
        self.threads: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        self.threads.append(threading.get_ident())
        return json_answer(self.body, self.status)


@pytest.fixture
def credential(monkeypatch: pytest.MonkeyPatch) -> FakeCredential:
    fake = FakeCredential()
    monkeypatch.setattr("relay_azure._auth.default_credential", lambda: fake)
    return fake


def test_an_api_key_goes_in_the_api_key_header(make_hub: Any) -> None:
    server = Recorder()
    make_hub(server).chat(TARGET, "Hi")
    assert server.headers[0]["api-key"] == KEY
    assert "authorization" not in server.headers[0]


def test_entra_tokens_are_bearer_cached_and_fetched_off_the_loop(
    make_hub: Any, credential: FakeCredential
) -> None:
    server = Recorder()
    hub = make_hub(server, catalog(options="{auth: entra}"))
    hub.chat(TARGET, "Hi")
    hub.chat(TARGET, "Again")
    assert [h["authorization"] for h in server.headers] == [f"Bearer {TOKEN}-1"] * 2
    assert "api-key" not in server.headers[0]
    assert [scope for scope, _ in credential.calls] == [
        "https://cognitiveservices.azure.com/.default"
    ]
    # get_token blocks: it ran in a worker thread, not on the loop serving the call.
    assert credential.calls[0][1] != server.threads[0]


def test_a_token_near_its_expiry_is_replaced(make_hub: Any, credential: FakeCredential) -> None:
    credential.lifetime = 120  # inside the five-minute refresh margin
    server = Recorder()
    hub = make_hub(
        server, catalog(options="{auth: entra, entra_scope: 'https://ai.azure.com/.default'}")
    )
    hub.chat(TARGET, "Hi")
    hub.chat(TARGET, "Again")
    assert [h["authorization"] for h in server.headers] == [
        f"Bearer {TOKEN}-1",
        f"Bearer {TOKEN}-2",
    ]
    assert {scope for scope, _ in credential.calls} == {"https://ai.azure.com/.default"}


def test_a_token_never_shows_in_errors_reprs_or_logs(
    make_hub: Any,
    credential: FakeCredential,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    echo = {"error": {**UNAUTHORIZED["error"], "message": f"token {TOKEN}-1 was refused"}}
    hub: Hub = make_hub(Recorder(401, echo), catalog(options="{auth: entra}"))
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as caught:
        hub.chat(TARGET, "Hi")
    adapter = hub.get(TARGET).adapter
    shown = [str(caught.value), repr(caught.value), repr(adapter), repr(adapter._entra)]
    shown += [caplog.text, *capsys.readouterr()]
    assert all(TOKEN not in text for text in shown)
    assert "token *** was refused" in str(caught.value)


def test_a_credential_that_fails_is_authentication_error(
    make_hub: Any, credential: FakeCredential
) -> None:
    credential.fail = RuntimeError("no managed identity endpoint")
    with pytest.raises(AuthenticationError, match="no managed identity endpoint") as caught:
        make_hub(Recorder(), catalog(options="{auth: entra}")).chat(TARGET, "Hi")
    assert not caught.value.retryable


def test_without_azure_identity_entra_names_the_extra(
    make_hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install 'relay-azure\[entra\]'"):
        make_hub(Recorder(), catalog(options="{auth: entra}")).chat(TARGET, "Hi")


def test_a_token_from_a_reference(make_hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", TOKEN)
    server = Recorder()
    make_hub(server, catalog(options="{entra_token: $env.AZURE_OPENAI_AD_TOKEN}")).chat(
        TARGET, "Hi"
    )
    assert server.headers[0]["authorization"] == f"Bearer {TOKEN}"
    assert "api-key" not in server.headers[0]


def test_an_unset_token_reference_names_the_reference(make_hub: Any) -> None:
    hub = make_hub(Recorder(), catalog(options="{entra_token: $env.AZURE_OPENAI_AD_TOKEN}"))
    with pytest.raises(CredentialError, match=r"\$env\.AZURE_OPENAI_AD_TOKEN"):
        hub.chat(TARGET, "Hi")


def test_a_token_written_inline_is_refused_without_echoing_it(make_hub: Any) -> None:
    hub = make_hub(Recorder(), catalog(options=f"{{entra_token: '{TOKEN}'}}"))
    with pytest.raises(ConfigError, match="credential reference") as caught:
        hub.chat(TARGET, "Hi")
    assert TOKEN not in str(caught.value)


def test_a_missing_key_says_how_to_give_one(make_hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    with pytest.raises(CredentialError, match=r"AZURE_OPENAI_API_KEY.*options\.auth: entra"):
        make_hub(Recorder()).chat(TARGET, "Hi")


def test_the_endpoint_may_come_from_the_environment(
    make_hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://other-resource.openai.azure.com/")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return json_answer(completion("ok"))

    make_hub(handler, "").chat(TARGET, "Hi")
    assert seen == [
        "https://other-resource.openai.azure.com/openai/deployments/"
        f"{DEPLOYMENT}/chat/completions?api-version=2024-10-21"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("providers: {}\n", "needs its Azure OpenAI endpoint"),
        (catalog(options="{auth: password}"), "auth must be 'api-key' or 'entra'"),
        (catalog(options="{api_versoin: v1}"), "unknown option"),
        (catalog(options="{api: responses}"), "Chat Completions only"),
        (catalog(options="{api_version: 20}"), "api_version must be"),
        (catalog(options="{auth: entra, entra_token: $env.X}"), "leave out auth"),
        (
            catalog(options="{auth: entra}", extra="    api_key: $env.AZURE_OPENAI_API_KEY\n"),
            "both configured",
        ),
        (
            f"providers:\n  azure:\n    base_url: {ENDPOINT}/openai/deployments/x\n",
            "endpoint alone",
        ),
    ],
)
def test_settings_are_checked(make_hub: Any, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_hub(Recorder(), text).chat(TARGET, "Hi")


def test_azure_identity_is_imported_only_when_a_call_needs_a_token(tmp_path: Path) -> None:
    # A stand-in azure-identity that works offline, so the import can be observed both
    # ways: absent after key calls, present after an Entra call.
    package = tmp_path / "azure" / "identity"
    package.mkdir(parents=True)
    (tmp_path / "azure" / "__init__.py").write_text("")
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            import time

            class _Token:
                def __init__(self):
                    self.token = "stand-in-token-0123456789"
                    self.expires_on = int(time.time()) + 3600

            class DefaultAzureCredential:
                def get_token(self, *scopes):
                    return _Token()
            """
        )
    )
    probe = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(tmp_path)!r})
        import httpx, relay_azure
        from relay_core.testing import hub_for

        answer = json.loads({json.dumps(json.dumps(completion("ok")))})
        seen = []

        def handler(request):
            seen.append(request.headers.get("authorization") or "api-key")
            return httpx.Response(200, json=answer)

        def call(options):
            text = "providers:\\n  azure:\\n    base_url: {ENDPOINT}\\n" + options
            with hub_for(text, relay_azure, transport=httpx.MockTransport(handler)) as hub:
                hub.chat("azure/d", "Hi")
            return "azure.identity" in sys.modules

        loaded = [call(""), call("    options: {{auth: entra}}\\n")]
        print(json.dumps({{"loaded": loaded, "seen": seen}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"AZURE_OPENAI_API_KEY": KEY, "PATH": "/usr/bin:/bin"},
    )
    outcome = json.loads(result.stdout)
    assert outcome["loaded"] == [False, True]
    assert outcome["seen"] == ["api-key", "Bearer stand-in-token-0123456789"]
