"""What the adapter sends, where it differs from relay-openai: presets' base URLs, keys and
auth headers, max-tokens field, system role, stream options, structured-output fallback."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core import (
    ConfigError,
    CredentialError,
    DocumentPart,
    ImagePart,
    InvalidRequestError,
    Message,
    Tool,
    UnsupportedCapability,
)
from relay_openai_compat import PRESETS

OK = {
    "id": "cmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
HOSTED = {
    "together": ("https://api.together.ai/v1", "TOGETHER_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "deepseek": ("https://api.deepseek.com", "DEEPSEEK_API_KEY"),
    "xai": ("https://api.x.ai/v1", "XAI_API_KEY"),
    "fireworks": ("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
}
LOCAL = {
    "vllm": "http://127.0.0.1:8000/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "llama-cpp": "http://127.0.0.1:8080/v1",
}

# The shortest whole stream: one chunk that says the answer is finished.
FINISHED = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


@pytest.fixture
def ok(server: Any) -> Any:
    server.reply(OK)
    return server


def test_every_preset_is_registered() -> None:
    assert set(PRESETS) == set(HOSTED) | set(LOCAL)


@pytest.mark.parametrize("preset", sorted(HOSTED))
def test_hosted_presets_url_and_bearer_key(
    ok: Any, make_hub: Any, fake_key: str, preset: str
) -> None:
    base, _ = HOSTED[preset]
    make_hub().chat(f"{preset}/some-model", "Hi")
    request = ok.requests[-1]
    assert str(request.url) == f"{base}/chat/completions"
    assert request.headers["authorization"] == f"Bearer {fake_key}"
    assert "openai-organization" not in request.headers


@pytest.mark.parametrize("preset", sorted(HOSTED))
def test_a_missing_key_is_a_credential_error_naming_the_variable(
    make_hub: Any, monkeypatch: pytest.MonkeyPatch, preset: str
) -> None:
    _, env = HOSTED[preset]
    monkeypatch.delenv(env)
    with pytest.raises(CredentialError, match=env):
        make_hub().chat(f"{preset}/some-model", "Hi")


@pytest.mark.parametrize("preset", sorted(LOCAL))
def test_local_presets_send_no_authorization(
    ok: Any, make_hub: Any, monkeypatch: pytest.MonkeyPatch, preset: str
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-should-not-be-sent")
    make_hub().chat(f"{preset}/some-model", "Hi")
    request = ok.requests[-1]
    assert str(request.url) == f"{LOCAL[preset]}/chat/completions"
    assert "authorization" not in request.headers
    assert "openai-organization" not in request.headers


def test_the_catalog_overrides_a_presets_url_and_key(
    ok: Any, make_hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_GROQ_PROXY_KEY", "proxy-key-0123456789abcdefghij")
    hub = make_hub(
        "providers:\n  groq:\n    base_url: https://proxy.example/groq/v1\n"
        "    api_key: $env.MY_GROQ_PROXY_KEY\n"
    )
    hub.chat("groq/llama-3.3-70b-versatile", "Hi")
    request = ok.requests[-1]
    assert str(request.url) == "https://proxy.example/groq/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer proxy-key-0123456789abcdefghij"


def test_the_generic_entry_takes_its_url_and_optional_key_from_the_catalog(
    ok: Any, make_hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_hub(
        "providers:\n  box:\n    plugin: openai-compat\n    base_url: http://10.0.0.5:9000/v1\n"
    )
    hub.chat("box/qwen3", "Hi")
    assert str(ok.requests[-1].url) == "http://10.0.0.5:9000/v1/chat/completions"
    assert "authorization" not in ok.requests[-1].headers
    monkeypatch.setenv("BOX_KEY", "box-key-0123456789abcdefghijkl")
    keyed = make_hub(
        "providers:\n  box:\n    plugin: openai-compat\n    base_url: http://10.0.0.5:9000/v1\n"
        "    api_key: $env.BOX_KEY\n"
    )
    keyed.chat("box/qwen3", "Hi")
    assert ok.requests[-1].headers["authorization"] == "Bearer box-key-0123456789abcdefghijkl"


def test_the_generic_entry_without_a_base_url_is_a_config_error(make_hub: Any) -> None:
    with pytest.raises(ConfigError, match=r"'box' needs a base_url.*providers\.box\.base_url"):
        make_hub("providers:\n  box: {plugin: openai-compat}\n").chat("box/m", "Hi")


def test_max_tokens_field_per_preset(ok: Any, make_hub: Any) -> None:
    hub = make_hub()
    hub.chat("together/meta-llama/Llama-3.3-70B-Instruct-Turbo", "Hi", max_tokens=50)
    assert ok.payload["max_tokens"] == 50
    assert "max_completion_tokens" not in ok.payload
    hub.chat("groq/llama-3.3-70b-versatile", "Hi", max_tokens=50)
    assert ok.payload["max_completion_tokens"] == 50
    assert "max_tokens" not in ok.payload


def test_max_tokens_field_from_the_catalog(ok: Any, make_hub: Any) -> None:
    hub = make_hub("providers:\n  vllm:\n    options: {max_tokens_field: max_completion_tokens}\n")
    hub.chat("vllm/qwen3", "Hi", max_tokens=7)
    assert ok.payload["max_completion_tokens"] == 7


def test_the_system_prompt_is_never_a_developer_message(ok: Any, make_hub: Any) -> None:
    # relay-openai would send "developer" for a model named like OpenAI's reasoning ones.
    make_hub().chat("openrouter/openai/o3-mini", "Hi", system="Be brief.")
    make_hub().chat("vllm/o4-mini-distill", "Hi", system="Be brief.")
    assert ok.payload["messages"][0] == {"role": "system", "content": "Be brief."}


def test_sampling_settings_are_sent_whatever_the_model_name(ok: Any, make_hub: Any) -> None:
    # relay-openai drops them for OpenAI's reasoning models; a compatible server's model
    # names say nothing about what it takes, so they go as asked.
    for target in ("openrouter/openai/o3-mini", "vllm/o4-mini-distill"):
        make_hub().chat(target, "Hi", temperature=0.2, top_p=0.5)
        assert (ok.payload["temperature"], ok.payload["top_p"]) == (0.2, 0.5)


def test_stream_usage_is_asked_for_unless_switched_off(server: Any, make_hub: Any) -> None:
    server.reply_sse([FINISHED])
    list(make_hub().stream("groq/llama-3.3-70b-versatile", "Hi"))
    assert server.payload["stream_options"] == {"include_usage": True}
    list(
        make_hub("providers:\n  ollama:\n    options: {stream_usage: false}\n").stream(
            "ollama/qwen3", "Hi"
        )
    )
    assert server.payload["stream"] is True
    assert "stream_options" not in server.payload


def test_provider_kwargs_still_win(server: Any, make_hub: Any) -> None:
    server.reply_sse([FINISHED])
    hub = make_hub("providers:\n  ollama:\n    options: {stream_usage: false}\n")
    kwargs = {"stream_options": {"include_usage": True}, "reasoning_format": "parsed"}
    list(hub.stream("ollama/qwen3", "Hi", provider_kwargs=kwargs))
    assert server.payload["stream_options"] == {"include_usage": True}
    assert server.payload["reasoning_format"] == "parsed"


FORECAST = Tool(
    "get_forecast",
    "Weather forecast for a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_sends_tools_loose_without_a_strict_field(
    ok: Any, make_hub: Any, preset: str
) -> None:
    make_hub().chat(f"{preset}/m", "Forecast?", tools=[FORECAST])
    assert ok.payload["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_forecast",
                "description": "Weather forecast for a city.",
                "parameters": FORECAST.parameters,
            },
        }
    ]


def test_strict_tools_can_be_switched_on_for_a_server_that_enforces_them(
    ok: Any, make_hub: Any
) -> None:
    hub = make_hub("providers:\n  vllm:\n    options: {strict_tools: true}\n")
    open_map = Tool("tag", "", {"type": "object", "properties": {"m": {"type": "object"}}})
    hub.chat("vllm/qwen3", "Forecast?", tools=[FORECAST, open_map])
    strict, loose = (tool["function"] for tool in ok.payload["tools"])
    assert strict["strict"] is True
    assert strict["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": ["integer", "null"]}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    # What strict mode cannot express still goes loose, without the field.
    assert loose == {"name": "tag", "parameters": open_map.parameters}


def test_json_schema_where_supported(ok: Any, make_hub: Any) -> None:
    make_hub().chat("groq/moonshotai/kimi-k2-instruct", "Where?", response_schema=SCHEMA)
    assert ok.payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": SCHEMA, "strict": True},
    }


def test_json_object_fallback_puts_the_schema_in_the_system_prompt(
    server: Any, make_hub: Any
) -> None:
    server.reply(
        {**OK, "choices": [{**OK["choices"][0], "message": {"content": '{"city":"Oslo"}'}}]}
    )
    hub = make_hub()
    hub.chat("deepseek/deepseek-chat", "Where?", system="Be brief.", response_schema=SCHEMA)
    sent = server.payload
    assert sent["response_format"] == {"type": "json_object"}
    system = sent["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("Be brief.\n\nReply with a single JSON object")
    assert '"required":["city"]' in system["content"]
    assert "json" in system["content"].lower()  # DeepSeek's JSON Output asks for the word
    hub.chat("deepseek/deepseek-chat", "Where?", response_schema=SCHEMA)
    assert server.payload["messages"][0]["role"] == "system"
    assert server.payload["messages"][1] == {"role": "user", "content": "Where?"}


def test_the_fallback_can_be_chosen_for_any_server(ok: Any, make_hub: Any) -> None:
    hub = make_hub(
        "providers:\n  local:\n    plugin: openai-compat\n    base_url: http://127.0.0.1:1/v1\n"
        "    options: {structured_output: json_object}\n"
    )
    ok.reply({**OK, "choices": [{**OK["choices"][0], "message": {"content": '{"city":"Oslo"}'}}]})
    ok.answers.pop(0)
    assert hub.chat("local/m", "Where?", response_schema=SCHEMA).json() == {"city": "Oslo"}
    assert ok.payload["response_format"] == {"type": "json_object"}


def test_the_responses_api_is_refused(make_hub: Any) -> None:
    with pytest.raises(InvalidRequestError, match="Chat Completions only"):
        make_hub().chat("groq/m", "Hi", provider_kwargs={"openai": {"api": "responses"}})
    with pytest.raises(ConfigError, match="Chat Completions only"):
        make_hub("providers:\n  groq:\n    options: {api: responses}\n").chat("groq/m", "Hi")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{max_tokens_field: n_predict}", "max_tokens_field must be one of"),
        ("{structured_output: grammar}", "structured_output must be one of"),
        ("{stream_usage: 'no'}", "stream_usage must be true or false"),
        ("{strict_tools: 1}", "strict_tools must be true or false"),
    ],
)
def test_bad_options_are_config_errors(make_hub: Any, options: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_hub(f"providers:\n  vllm:\n    options: {options}\n").chat("vllm/m", "Hi")


def test_capabilities_differ_per_preset(ok: Any, make_hub: Any) -> None:
    hub = make_hub()
    image = Message.user("What is this?", ImagePart(url="https://example.com/cat.png"))
    pdf = Message.user("Summarise.", DocumentPart(data=b"%PDF-1.7 fake", name="a.pdf"))
    with pytest.raises(
        UnsupportedCapability, match="deepseek/deepseek-chat does not support vision"
    ):
        hub.chat("deepseek/deepseek-chat", image)
    hub.chat("groq/meta-llama/llama-4-scout-17b-16e-instruct", image)
    assert ok.payload["messages"][0]["content"][1]["type"] == "image_url"
    with pytest.raises(UnsupportedCapability, match="groq/m does not support documents"):
        hub.chat("groq/m", pdf)
    hub.chat("openrouter/anthropic/claude-sonnet-4.5", pdf)
    assert ok.payload["messages"][0]["content"][1]["type"] == "file"
    assert len(ok.requests) == 2
