"""A key set in the environment appears in no log line, error text, repr or audit event,
even when the provider echoes it back."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

from relay_core import (
    AuditEvent,
    AuthenticationError,
    Capability,
    ErrorInfo,
    Provider,
    Request,
    Response,
    hookimpl,
    serialize,
)
from relay_core.log import configure_logging, get_logger

# Neither value has the shape of a known provider key: only registration can mask them.
KEY = "correct-horse-battery-staple-7781"
OTHER_KEY = "tr0ub4dor-and-3-more-words"


class EchoesItsKey(Provider):
    """Behaves like a provider that quotes the rejected key in its error message."""

    capabilities = frozenset({Capability.CHAT})
    api_key_env = "LEAKY_API_KEY"

    async def chat(self, request: Request) -> Response:
        key = self.settings.api_key.reveal() if self.settings.api_key else ""
        get_logger("relay.test").debug("sending", key_header=f"Bearer {key}", model=request.model)
        if request.messages[-1].text == "fail":
            raise AuthenticationError(f"Incorrect API key provided: {key}", provider="leaky")
        return Response(content=f"ok; your key was {key}", raw={"echo": key})


class Plugin:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    @hookimpl
    def relay_register_providers(self, register: Any) -> None:
        register("leaky", EchoesItsKey)
        register("leaky-ref", EchoesItsKey)

    @hookimpl
    def relay_audit(self, event: AuditEvent) -> None:
        self.events.append(event)


@pytest.fixture
def log_stream() -> Any:
    stream = io.StringIO()
    handler = configure_logging("json", logging.DEBUG, stream=stream)
    yield stream
    logger = logging.getLogger("relay")
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def test_keys_never_leak(make_hub: Any, monkeypatch: pytest.MonkeyPatch, log_stream: Any) -> None:
    monkeypatch.setenv("LEAKY_API_KEY", KEY)
    monkeypatch.setenv("LEAKY_REF_KEY", OTHER_KEY)
    plugin = Plugin()
    hub = make_hub("providers:\n  leaky-ref:\n    api_key: $env.LEAKY_REF_KEY\n")
    hub.plugins.register(plugin)

    texts: list[str] = []
    # Answers are the caller's data and are not rewritten; what Relay itself prints is.
    ok = hub.chat("leaky/m", "hello")
    hub.chat("leaky-ref/m", "hello")
    for alias in ("leaky/m", "leaky-ref/m"):
        with pytest.raises(AuthenticationError) as caught:
            hub.chat(alias, "fail", custom_id="row-1")
        texts += [str(caught.value), repr(caught.value), caught.value.provider_message]
        texts.append(serialize.dumps(ErrorInfo.from_exception(caught.value)))
        adapter = hub.get(alias).adapter
        texts += [repr(adapter.settings), str(adapter.settings.api_key)]
    texts += [repr(event) for event in plugin.events]
    texts.append(log_stream.getvalue())

    assert "sending" in log_stream.getvalue()  # the log really was written
    for text in texts:
        assert KEY not in text
        assert OTHER_KEY not in text
    # The caller still gets the provider's answer; masking applies to what Relay prints.
    assert ok.text == f"ok; your key was {KEY}"
