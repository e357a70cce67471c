"""Request bodies a hostile client sends relay-serve, refused with a 4xx in OpenAI's
shape before any upstream call: nested too deep or holding a lone surrogate (400)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from serve_support import Served, TroubleProvider

from relay_serve._wire import MAX_DEPTH

Serve = Callable[..., Served]
CHAT = "/v1/chat/completions"
# A model whose provider records every call it gets.
RECORDED = {"model": "trouble/ProviderUnavailable", "messages": [{"role": "user", "content": "x"}]}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


# ---------------------------------------------------------------------------- body content


def _nested(depth: int) -> str:
    """A request body nested ``depth`` deep: the body, its metadata, and lists in it."""
    lists = depth - 2
    deep = "[" * lists + '"deep"' + "]" * lists
    return json.dumps({**RECORDED, "metadata": {"x": "X"}}).replace('"X"', deep)


@pytest.mark.parametrize("depth", [1000, 5000, MAX_DEPTH + 1])
def test_json_nested_too_deep_is_a_400(serve: Serve, depth: int) -> None:
    text = _nested(depth)
    with serve().http() as http:
        answer = http.post(CHAT, content=text, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert f"more than {MAX_DEPTH} deep" in error_of(answer)["message"]
    assert TroubleProvider.calls == []


def test_json_nested_to_the_limit_is_served(serve: Serve) -> None:
    text = _nested(MAX_DEPTH)
    with serve().http() as http:
        answer = http.post(CHAT, content=text, headers={"content-type": "application/json"})
    assert answer.status_code == 502  # the recording provider's answer: it was called
    assert TroubleProvider.calls == ["ProviderUnavailable"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "fast", "messages": [{"role": "user", "content": "a\ud800b"}]}, None),
        ({**RECORDED, "messages": [{"role": "user", "content": "a\udfffb"}]}, None),
        ({**RECORDED, "metadata": {"k\ud800": "v"}}, "metadata"),
        ({**RECORDED, "user": "\udc00"}, "user"),
    ],
)
def test_a_lone_surrogate_is_a_400_before_any_upstream_call(
    serve: Serve, body: dict[str, Any], param: str | None
) -> None:
    # json.dumps writes a lone surrogate as the \ud800 escape, as a hostile client would.
    text = json.dumps(body)
    with serve().http() as http:
        answer = http.post(CHAT, content=text, headers={"content-type": "application/json"})
        streamed = http.post(
            CHAT,
            content=json.dumps({**body, "stream": True}),
            headers={"content-type": "application/json"},
        )
    for each in (answer, streamed):
        assert each.status_code == 400
        error = error_of(each)
        assert error["type"] == "invalid_request_error"
        assert "surrogate" in error["message"]
        assert error["param"] == (param or "messages[0].content")
    assert TroubleProvider.calls == []
