"""relay-serve over plain HTTP: malformed requests, keys, rate limits, the queue, client
disconnects, metrics, and keys that must never show anywhere."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from serve_support import CATALOG, CHAT, HELLO, Served, TroubleProvider, error_of

from relay_core.log import configure_logging
from relay_serve import ApiKey, ServeSettings

Serve = Callable[..., Served]
KEY = "sk-relay-CANARYkey0123456789abcdefXYZ"


def keyed(requests_per_minute: int | None = None) -> ServeSettings:
    return ServeSettings(keys=(ApiKey.from_key("ci", KEY, requests_per_minute),))


def auth(key: str = KEY) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


# ---------------------------------------------------------------------------- bad input


def test_a_body_that_is_not_json_is_a_400(serve: Serve) -> None:
    with serve().http() as http:
        response = http.post(
            CHAT, content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_request_error"
    assert "parse the JSON body" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "fast"}, "messages"),
        ({"model": "fast", "messages": []}, "messages"),
        ({"model": "fast", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({**HELLO, "temperature": "hot"}, "temperature"),
        ({**HELLO, "max_tokens": 0}, "max_tokens"),
        ({**HELLO, "max_completion_tokens": 1.5}, "max_completion_tokens"),
        ({**HELLO, "top_p": 3}, "top_p"),
        ({**HELLO, "stream": "yes"}, "stream"),
        ({**HELLO, "n": 2}, "n"),
        ({**HELLO, "temprature": 0.2}, "temprature"),
        ({**HELLO, "reasoning_effort": "extreme"}, "reasoning_effort"),
        ({**HELLO, "response_format": {"type": "xml"}}, "response_format.type"),
        ({**HELLO, "tools": [{"type": "function"}]}, "tools[0].function"),
        ({**HELLO, "tool_choice": {"type": "function", "function": {"name": "x"}}}, "tool_choice"),
        (
            {
                "model": "fast",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{"},
                            }
                        ],
                    },
                ],
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {"model": "fast", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_field(
    serve: Serve, body: object, param: str | None
) -> None:
    with serve().http() as http:
        response = http.post(CHAT, json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_an_unknown_route_answers_in_openai_s_shape(serve: Serve) -> None:
    with serve().http() as http:
        response = http.get("/v1/audio/speech")
    assert response.status_code == 404
    assert error_of(response)["type"] == "invalid_request_error"


# ---------------------------------------------------------------------------- request ids


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "-leading-dash", 'quote"d', "é"])
def test_an_unacceptable_request_id_is_refused_not_echoed(serve: Serve, bad: str) -> None:
    with serve().http() as http:
        response = http.post(CHAT, json=HELLO, headers={"x-request-id": bad.encode()})
    assert response.status_code == 400
    assert error_of(response)["param"] == "X-Request-ID"
    assert response.headers["x-request-id"].startswith("chatcmpl-")
    assert bad not in response.text


def test_request_id_is_also_read_from_the_request_id_header(serve: Serve) -> None:
    with serve().http() as http:
        response = http.post(CHAT, json=HELLO, headers={"request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["id"] == "abc-123"


def test_the_request_id_is_the_audit_events_custom_id(serve: Serve) -> None:
    from relay_core import hookimpl

    events: list[Any] = []

    class Sink:
        @hookimpl
        def relay_audit(self, event: Any) -> None:
            events.append(event)

    server = serve()
    server.app.state.relay.hub.plugins.register(Sink(), name="sink")
    with server.http() as http:
        http.post(CHAT, json=HELLO, headers={"x-request-id": "audit-me-1"})
    assert [(e.kind, e.custom_id) for e in events] == [("call.succeeded", "audit-me-1")]


def test_audit_events_name_the_callers_key_never_the_key(serve: Serve) -> None:
    from relay_core import hookimpl

    events: list[Any] = []

    class Sink:
        @hookimpl
        def relay_audit(self, event: Any) -> None:
            events.append(event)

    server = serve(settings=keyed())
    server.app.state.relay.hub.plugins.register(Sink(), name="sink")
    with server.http() as http:
        assert http.post(CHAT, json=HELLO, headers=auth()).status_code == 200
    assert [e.caller for e in events] == ["ci"]
    assert KEY not in repr(events)


# ---------------------------------------------------------------------------- keys


def test_without_a_key_a_keyed_server_answers_401(serve: Serve) -> None:
    with serve(settings=keyed()).http() as http:
        missing = http.post(CHAT, json=HELLO)
        wrong = http.post(CHAT, json=HELLO, headers=auth("sk-relay-WRONGkey0123456789abcdef"))
        basic = http.post(CHAT, json=HELLO, headers={"authorization": "Basic " + KEY})
        models = http.get("/v1/models")
        right = http.post(CHAT, json=HELLO, headers=auth())
    assert [r.status_code for r in (missing, wrong, basic, models)] == [401] * 4
    assert error_of(wrong)["code"] == "invalid_api_key"
    assert right.status_code == 200


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(serve: Serve) -> None:
    server = serve(settings=keyed(requests_per_minute=2))
    with server.http() as http:
        statuses = [http.post(CHAT, json=HELLO, headers=auth()).status_code for _ in range(2)]
        refused = http.post(CHAT, json=HELLO, headers=auth())
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert server.metrics(KEY)['relay_serve_rejected_total{reason="rate_limited"}'] == 1


@pytest.fixture
def captured_logs() -> Iterator[list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = configure_logging("json", "DEBUG")
    collector = Collect()
    logging.getLogger("relay").addHandler(collector)
    yield lines
    logging.getLogger("relay").removeHandler(collector)
    logging.getLogger("relay").removeHandler(handler)
    logging.getLogger("relay").setLevel(logging.WARNING)


def test_keys_never_appear_in_logs_metrics_or_errors(
    serve: Serve, captured_logs: list[str]
) -> None:
    server = serve(settings=keyed(requests_per_minute=1))
    with server.http() as http:
        texts = [
            http.post(CHAT, json=HELLO, headers=auth()).text,
            http.post(CHAT, json=HELLO, headers=auth()).text,  # rate limited
            http.post(CHAT, json=HELLO, headers=auth(KEY + "x")).text,  # wrong key
            http.post(CHAT, json={"model": KEY, "messages": []}, headers=auth()).text,
            http.get("/metrics", headers=auth()).text,
            http.get("/health", headers=auth()).text,
        ]
    assert captured_logs, "the server logged nothing to look through"
    for text in [*texts, *captured_logs]:
        assert KEY not in text
        assert KEY[9:] not in text  # the random part alone


def test_an_upstream_without_credentials_is_the_operators_error_logged_once(
    serve: Serve, captured_logs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELAY_SERVE_TEST_UNSET_KEY", raising=False)
    catalog = CATALOG.replace(
        "models:\n",
        "  locked:\n    plugin: trouble\n    api_key: $env.RELAY_SERVE_TEST_UNSET_KEY\n"
        "models:\n  keyless: locked/anything\n",
    )
    server = serve(catalog)
    body = {"model": "keyless", "messages": [{"role": "user", "content": "hi"}]}
    with server.http() as http:
        answers = [http.post(CHAT, json=body) for _ in range(2)]
        answers.append(http.post(CHAT, json={**body, "stream": True}))
    for answer in answers:
        assert answer.status_code == 503
        error = error_of(answer)
        assert error["type"] == "server_error"
        assert error["code"] == "upstream_credentials_missing"
        assert "'keyless'" in error["message"]
        assert "RELAY_SERVE_TEST_UNSET_KEY" not in answer.text
    logged = [line for line in captured_logs if "serve.credentials_missing" in line]
    assert len(logged) == 1
    assert "RELAY_SERVE_TEST_UNSET_KEY" in logged[0]  # the operator learns which one


def test_with_keys_metrics_and_health_details_need_a_key(serve: Serve) -> None:
    # One request a minute: reading health and metrics must not spend it.
    server = serve(settings=keyed(requests_per_minute=1))
    with server.http() as http:
        metrics = http.get("/metrics")
        wrong_metrics = http.get("/metrics", headers=auth(KEY + "x"))
        bare = http.get("/health")
        wrong_health = http.get("/health", headers=auth(KEY + "x"))
        detailed = http.get("/health", headers=auth())
        keyed_metrics = http.get("/metrics", headers=auth())
        chat = http.post(CHAT, json=HELLO, headers=auth())
    assert metrics.status_code == 401
    assert error_of(metrics)["type"] == "invalid_request_error"
    assert wrong_metrics.status_code == 401
    assert (bare.status_code, bare.json()) == (200, {"status": "ok"})
    assert wrong_health.status_code == 401
    assert detailed.status_code == 200
    assert {"in_flight", "backends", "breakers"} <= set(detailed.json())
    assert keyed_metrics.status_code == 200
    assert "relay_serve_in_flight" in keyed_metrics.text
    assert chat.status_code == 200


def test_an_open_server_shows_metrics_and_health_to_all(serve: Serve) -> None:
    with serve().http() as http:
        assert http.get("/metrics").status_code == 200
        assert "in_flight" in http.get("/health").json()


# ---------------------------------------------------------------------------- load


def _raw_chat(url: str, body: dict[str, Any]) -> socket.socket:
    """Send a chat request on a raw socket and leave it waiting for the answer, so the
    test can hang up whenever it likes."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    payload = json.dumps(body).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\n"
        + f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    return sock


def test_beyond_the_queue_requests_are_shed_at_once_with_429(serve: Serve) -> None:
    server = serve(settings=ServeSettings(max_concurrency=1, max_queue=1))
    slow = {"model": "slow", "messages": [{"role": "user", "content": "wait"}]}
    running = _raw_chat(server.url, slow)
    server.wait_for(lambda m: m["relay_serve_in_flight"] == 1)
    queued = _raw_chat(server.url, slow)
    server.wait_for(lambda m: m["relay_serve_queue_depth"] == 1)
    with server.http() as http:
        refused = http.post(CHAT, json=HELLO)
        health = http.get("/health").json()
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "queue_full"
    assert refused.headers["retry-after"] == "1"
    assert health["in_flight"] == 1
    assert health["queue_depth"] == 1
    running.close()
    queued.close()
    final = server.wait_for(
        lambda m: m["relay_serve_in_flight"] == 0 and m["relay_serve_queue_depth"] == 0
    )
    assert final['relay_serve_rejected_total{reason="queue_full"}'] == 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_hangs_up_cancels_the_slow_upstream_call(serve: Serve, stream: bool) -> None:
    server = serve()
    sock = _raw_chat(
        server.url,
        {"model": "slow", "messages": [{"role": "user", "content": "x"}], "stream": stream},
    )
    server.wait_for(lambda m: m["relay_serve_in_flight"] == 1)
    sock.close()
    # The mock would answer in 600 s; the slot is free long before that only if the
    # upstream call was cancelled.
    final = server.wait_for(lambda m: m["relay_serve_in_flight"] == 0)
    assert final['relay_serve_cancelled_total{route="/v1/chat/completions"}'] == 1


def test_a_client_that_hangs_up_mid_stream_cancels_the_upstream_stream(serve: Serve) -> None:
    server = serve()
    body = {"model": "stall", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with (
        httpx.Client(base_url=server.url, timeout=30) as http,
        http.stream("POST", CHAT, json=body, headers={"x-request-id": "hang-up-1"}) as answer,
    ):
        lines = answer.iter_lines()
        first = [next(lines) for _ in range(4)]  # role chunk, blank, text chunk, blank
    assert '"content": "partial"' in first[2]
    server.wait_for(lambda m: m["relay_serve_in_flight"] == 0)
    assert TroubleProvider.cancelled == ["hang-up-1"]


def test_an_error_after_the_stream_began_is_its_last_event(serve: Serve) -> None:
    body = {"model": "trouble/midstream", "messages": [{"role": "user", "content": "x"}]}
    with serve().http() as http:
        response = http.post(CHAT, json={**body, "stream": True})
    assert response.status_code == 200
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line]
    assert json.loads(events[1])["choices"][0]["delta"] == {"content": "partial"}
    assert json.loads(events[-1]) == {
        "error": {
            "message": json.loads(events[-1])["error"]["message"],
            "type": "server_error",
            "param": None,
            "code": "upstream_unavailable",
        }
    }
    assert "[DONE]" not in events
    assert "sk-upstream" not in response.text


# ---------------------------------------------------------------------------- metrics


def test_metrics_are_valid_exposition_text_with_every_family(serve: Serve) -> None:
    server = serve()
    with server.http() as http:
        http.post(CHAT, json=HELLO)
        http.post(CHAT, json={**HELLO, "model": "nope"})
        http.post(CHAT, json={**HELLO, "model": "limited"})
        response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = server.metrics()
    route = "/v1/chat/completions"
    assert samples[f'relay_serve_requests_total{{route="{route}",model="fast",status="200"}}'] == 1
    assert samples[f'relay_serve_requests_total{{route="{route}",model="other",status="404"}}'] == 1
    assert (
        samples[f'relay_serve_requests_total{{route="{route}",model="limited",status="429"}}'] == 1
    )
    assert samples['relay_serve_upstream_errors_total{kind="RateLimitError"}'] == 1
    assert samples[f'relay_serve_request_duration_seconds_count{{route="{route}"}}'] == 3
    assert samples[f'relay_serve_request_duration_seconds_bucket{{route="{route}",le="+Inf"}}'] == 3
    assert samples["relay_serve_in_flight"] == 0
    assert samples["relay_serve_queue_depth"] == 0
    for family in ("requests_total", "request_duration_seconds", "rejected_total"):
        assert f"# TYPE relay_serve_{family} " in response.text


def test_health_answers_ok(serve: Serve) -> None:
    with serve().http() as http:
        response = http.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_health_reports_open_circuit_breakers(serve: Serve) -> None:
    catalog = CATALOG.replace(
        "  trouble:\n    max_retries: 0\n",
        "  trouble:\n    max_retries: 0\n    circuit_breaker: {failures: 2, reset_after: 600}\n",
    )
    with serve(catalog).http() as http:
        assert http.get("/health").json()["breakers"] == {}
        body = {
            "model": "trouble/ProviderUnavailable",
            "messages": [{"role": "user", "content": "x"}],
        }
        answers = [http.post(CHAT, json=body) for _ in range(3)]
        health = http.get("/health").json()
    assert [a.status_code for a in answers] == [502, 502, 503]
    # The open breaker: no upstream call, and a Retry-After clients can honour.
    assert answers[2].json()["error"]["code"] == "upstream_circuit_open"
    assert int(answers[2].headers["retry-after"]) > 590
    assert health["breakers"] == {"trouble/ProviderUnavailable": "open"}
    assert health["status"] == "ok"  # other upstreams still answer


def test_requests_from_many_threads_are_all_answered(serve: Serve) -> None:
    server = serve(settings=ServeSettings(max_concurrency=2, max_queue=64))
    results: list[int] = []

    def call(index: int) -> None:
        with server.http() as http:
            body = {"model": "fast", "messages": [{"role": "user", "content": f"n{index}"}]}
            answer = http.post(CHAT, json=body)
            assert answer.json()["choices"][0]["message"]["content"] == f"n{index}"
            results.append(answer.status_code)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 12


def test_health_and_metrics_report_the_backends_of_a_pool(serve: Serve) -> None:
    from _backends import FakeBackend

    with FakeBackend("one") as one, FakeBackend("two") as two:
        catalog = (
            "providers:\n  pool:\n    max_retries: 1\n"
            f"    options: {{backends: [{one.url}, {two.url}], max_failures: 1}}\n"
            "models:\n  local: pool/m\n"
        )
        server = serve(catalog)
        two.failing = True
        with server.http() as http:
            for _ in range(4):  # the failing backend is tried, removed, and the retry answers
                assert http.post(CHAT, json={**HELLO, "model": "local"}).status_code == 200
            health = http.get("/health").json()
        states = {state["url"]: state for state in health["backends"]["pool"]}
        assert (states[one.url]["healthy"], states[two.url]["healthy"]) == (True, False)
        assert "500" in (states[two.url]["last_error"] or "")
        assert health["status"] == "ok"  # one backend still serves
        samples = server.metrics()
        assert samples[f'relay_serve_backend_healthy{{provider="pool",backend="{one.url}"}}'] == 1
        assert samples[f'relay_serve_backend_healthy{{provider="pool",backend="{two.url}"}}'] == 0


def test_health_metrics_and_answers_never_show_a_backend_password(serve: Serve) -> None:
    from _backends import FakeBackend

    with FakeBackend("one") as one:
        secret_url = one.url.replace("http://", "http://admin:S3cretPoolPass@", 1)
        catalog = (
            "providers:\n  pool:\n    max_retries: 0\n"
            f"    options: {{backends: ['{secret_url}']}}\n"
            "models:\n  local: pool/m\n"
        )
        server = serve(catalog)
        with server.http() as http:
            answer = http.post(CHAT, json={**HELLO, "model": "local"})
            health = http.get("/health")
            metrics = http.get("/metrics")
    assert answer.status_code == 200
    shown = one.url.replace("http://", "http://***@", 1)
    assert [state["url"] for state in health.json()["backends"]["pool"]] == [shown]
    assert f'backend="{shown}"' in metrics.text
    for text in (answer.text, health.text, metrics.text):
        assert "S3cretPoolPass" not in text
