"""OpenAI- and Anthropic-style messages wherever a prompt is taken, and back to OpenAI's.

The converter (:mod:`relay_core.messages`) reads every form into Relay's messages with
errors that name the message and field; every call form takes the list as the prompt or
as ``messages=``; batch inputs and ``relay chat -`` take it too; and OpenAI dicts ->
messages -> dicts and messages -> dicts -> messages are stable (property tests).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import relay_core.cli as cli_module
from relay_core import (
    BatchInputError,
    BatchRequest,
    DocumentPart,
    ImagePart,
    InvalidRequestError,
    Message,
    PluginRegistry,
    RelayClient,
    Request,
    Route,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    openai_messages,
    parse_messages,
)
from relay_core.batch._inputs import normalise, read_jsonl
from relay_core.cli import cli
from relay_core.serialize import unstructure
from relay_core.testing import OPENAI_QUICKSTART

CATALOG = "models:\n  fast:\n    target: scripted/one\n"
PIRATE = OPENAI_QUICKSTART["pirate"]
CLASSIC = OPENAI_QUICKSTART["classic"]
PNG = b"\x89PNG\r\n\x1a\nfake"
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


# ---------------------------------------------------------------------------- call forms


class FirstAlias:
    """A router that tries the aliases in the order given."""

    def route(self, request: Request, context: Any) -> Route:
        return Route(order=tuple(context.aliases), reason="first")


@pytest.mark.parametrize("conversation", [PIRATE, CLASSIC], ids=["pirate", "classic"])
@pytest.mark.parametrize(
    "call",
    [
        lambda hub, m: hub.chat("fast", messages=m),
        lambda hub, m: hub.chat("fast", m),
        lambda hub, m: hub.get("fast").chat(messages=m),
        lambda hub, m: hub.get("fast").chat(m),
        lambda hub, m: list(hub.stream("fast", messages=m))[-1].response,
        lambda hub, m: list(hub.get("fast").stream(messages=m))[-1].response,
        lambda hub, m: hub.run_tools("fast", messages=m, toolsets=[]),
        lambda hub, m: hub.chat(messages=m),  # the catalog's default model
        lambda hub, m: hub.chat_routed(FirstAlias(), messages=m, aliases=["fast"]),
    ],
    ids=[
        "chat",
        "chat-prompt",
        "handle",
        "handle-prompt",
        "stream",
        "handle-stream",
        "tools",
        "default",
        "routed",
    ],
)
def test_the_openai_quickstart_messages_work_unchanged(
    make_hub: Any, scripted: Any, conversation: list[dict[str, Any]], call: Any
) -> None:
    hub = make_hub(CATALOG + "defaults:\n  model: fast\n")
    answer = call(hub, conversation)
    received = scripted.received[-1]
    assert received.system == conversation[0]["content"]
    assert [(m.role, m.text) for m in received.messages] == [
        (m["role"], m["content"]) for m in conversation[1:]
    ]
    assert answer.text == f"echo: {conversation[-1]['content']}"


def test_the_same_conversation_as_dicts_or_messages_is_the_same_request(
    make_hub: Any, scripted: Any
) -> None:
    hub = make_hub(CATALOG)
    hub.chat("fast", messages=CLASSIC)
    hub.chat(
        "fast",
        [
            Message.user(CLASSIC[1]["content"]),
            Message.assistant(CLASSIC[2]["content"]),
            Message.user(CLASSIC[3]["content"]),
        ],
        system=CLASSIC[0]["content"],
    )
    from_dicts, from_messages = scripted.received
    assert from_dicts.fingerprint() == from_messages.fingerprint()


def test_a_prompt_and_messages_together_are_refused(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    with pytest.raises(InvalidRequestError, match="as the prompt or as messages=, not both"):
        hub.chat("fast", "hi", messages=PIRATE, custom_id="r1")


def test_system_messages_join_the_system_option_and_keep_their_cache_breakpoint(
    make_hub: Any, scripted: Any
) -> None:
    hub = make_hub(CATALOG)
    messages = [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}}
            ],
        },
        {"role": "user", "content": "hi"},
    ]
    hub.chat("fast", messages=messages, system="First.")
    received = scripted.received[-1]
    assert (received.system, received.cache_system) == ("First.\n\nLong rules.", True)


def test_anthropic_system_blocks_are_taken_as_the_system_option(
    make_hub: Any, scripted: Any
) -> None:
    hub = make_hub(CATALOG)
    blocks = [{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}]
    hub.chat("fast", "hi", system=blocks)
    received = scripted.received[-1]
    assert (received.system, received.cache_system) == ("Rules.", True)


def test_an_error_in_the_messages_names_the_message_field_and_request(make_hub: Any) -> None:
    hub = make_hub(CATALOG)
    bad = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{x"}}
            ],
        },
    ]
    with pytest.raises(InvalidRequestError) as caught:
        hub.chat("fast", messages=bad, custom_id="req-7")
    assert caught.value.custom_id == "req-7"
    assert "messages[1].tool_calls[0].function.arguments: not JSON" in str(caught.value)


# ---------------------------------------------------------------------------- the forms


def test_openai_parts_tool_calls_and_tool_messages() -> None:
    conversation = parse_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look."},
                    {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {
                        "type": "file",
                        "file": {
                            "file_data": "data:application/pdf;base64,JVBERg==",
                            "filename": "a.pdf",
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"city": "Paris"}'},
                    },
                    {"id": "c2", "type": "function", "function": {"name": "t", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "noon"}]},
        ]
    )
    assert conversation.system is None
    assert conversation.messages == (
        Message.user(
            "Look.",
            ImagePart(data=PNG, media_type="image/png", detail="low"),
            ImagePart(url="https://example.com/a.png"),
            DocumentPart(data=b"%PDF", media_type="application/pdf", name="a.pdf"),
        ),
        Message("assistant", (ToolCallPart("c1", "w", {"city": "Paris"}), ToolCallPart("c2", "t"))),
        # One turn of results, each named after the call it answers.
        Message.tool(ToolResultPart("c1", "sunny", "w"), ToolResultPart("c2", "noon", "t")),
    )


def test_anthropic_content_blocks() -> None:
    ephemeral = {"type": "ephemeral"}
    conversation = parse_messages(
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": base64.b64encode(PNG).decode(),
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/b.jpg"},
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                        "title": "n.txt",
                    },
                    {
                        "type": "document",
                        "source": {"type": "url", "url": "https://example.com/c.pdf"},
                        "cache_control": ephemeral,
                    },
                    {"type": "text", "text": "Summarise.", "cache_control": ephemeral},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool_use",
                        "id": "tu1",
                        "name": "search",
                        "input": {"q": "x"},
                        "cache_control": ephemeral,
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "tu1",
                        "content": [{"type": "text", "text": "found"}],
                        "is_error": True,
                    },
                ],
            },
        ]
    )
    assert conversation.messages == (
        Message.user(
            ImagePart(data=PNG, media_type="image/png"),
            ImagePart(url="https://example.com/b.jpg"),
            DocumentPart(data=b"notes", media_type="text/plain", name="n.txt"),
            DocumentPart(url="https://example.com/c.pdf", cache=True),
            TextPart("Summarise.", cache=True),
        ),
        # A tool_use cannot carry a breakpoint of its own: at the message's end it is the message's.
        Message(
            "assistant",
            (
                ThinkingPart("hmm", "sig"),
                ThinkingPart("", "opaque", redacted=True),
                TextPart("Let me look."),
                ToolCallPart("tu1", "search", {"q": "x"}),
            ),
            cache=True,
        ),
        Message.tool(ToolResultPart("tu1", "found", "search", is_error=True)),
    )


def test_relays_own_messages_and_their_plain_data_pass_through() -> None:
    messages = (
        Message("user", ("a", ImagePart(url="https://example.com/a.png")), cache=True),
        Message("assistant", (ThinkingPart("t", "s"), ToolCallPart("c", "f", {"x": 1}))),
        Message.tool(ToolResultPart("c", "r", "f", is_error=True)),
    )
    assert parse_messages(messages).messages == messages
    assert parse_messages([unstructure(m) for m in messages]).messages == messages


def test_legacy_function_messages() -> None:
    conversation = parse_messages(
        [
            {"role": "user", "content": "time?"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "now", "arguments": "{}"},
            },
            {"role": "function", "name": "now", "content": "12:00"},
        ]
    )
    assert conversation.messages[1:] == (
        Message("assistant", (ToolCallPart("now", "now"),)),
        Message.tool(ToolResultPart("now", "12:00", "now")),
    )


def test_an_sdk_response_message_appended_as_is_is_read() -> None:
    # What `completion.choices[0].message.model_dump()` gives, nulls and all.
    dumped = {
        "content": "Hi!",
        "refusal": None,
        "role": "assistant",
        "annotations": [],
        "audio": None,
        "function_call": None,
        "tool_calls": None,
    }
    assert parse_messages([{"role": "user", "content": "hi"}, dumped]).messages[1] == (
        Message.assistant("Hi!")
    )


BAD = [
    ("hello", "messages must be a list of messages, not str"),
    ([5], "messages[0]: expected a message (a mapping with role and content), not int"),
    ([{"content": "x"}], "messages[0].role: missing"),
    ([{"role": "robot", "content": "x"}], "messages[0].role: unknown role 'robot'"),
    ([{"role": "user", "contents": "x"}], "messages[0].contents: unknown field"),
    ([{"role": "user"}], "messages[0].content: expected text or a list of parts, missing"),
    (
        [
            {"role": "user", "content": "a"},
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}],
            },
        ],
        "messages[1].content[0]: Relay does not carry audio yet",
    ),
    (
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}},
                ],
            }
        ],
        "messages[0].content[1].image_url.url: not valid base64",
    ),
    (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}],
        "messages[0].content[0].image_url.url: expected an http(s) URL or a base64 data: URL",
    ),
    (
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": PNG_URL, "detail": "max"}}],
            }
        ],
        "messages[0].content[0].image_url.detail: expected auto, low or high",
    ),
    (
        [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}],
        "messages[0].content[0].file.file_id: a file_id names a file uploaded to OpenAI",
    ),
    (
        [{"role": "user", "content": [{"type": "video", "url": "x"}]}],
        "messages[0].content[0].type: unknown part type 'video'",
    ),
    (
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a", "cache_control": {"type": "forever"}}],
            }
        ],
        'messages[0].content[0].cache_control: expected {"type": "ephemeral"}',
    ),
    (
        [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t",
                        "name": "n",
                        "input": {},
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "x"},
                ],
            }
        ],
        "messages[0].content[0].cache_control: a tool_call part cannot carry a cache breakpoint",
    ),
    (
        [
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}],
            }
        ],
        "messages[0].tool_calls[0].function.arguments: expected a JSON object, not list",
    ),
    (
        [{"role": "tool", "tool_call_id": 7, "content": "x"}],
        "messages[0].tool_call_id: expected text",
    ),
    (
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "image", "source": {}}],
                    }
                ],
            }
        ],
        "messages[0].content[0].content[0]: Relay's tool results carry text only",
    ),
    (
        [{"role": "user", "content": [{"type": "tool_call", "id": "c"}]}],
        "messages[0].content[0]: name: missing",
    ),
    (
        [{"role": "assistant", "content": "x", "audio": {"id": "a1"}}],
        "messages[0].audio: Relay does not carry audio",
    ),
]


@pytest.mark.parametrize(("value", "says"), BAD)
def test_bad_messages_are_refused_naming_where(value: Any, says: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_messages(value, custom_id="job-1")
    assert says in str(caught.value)
    assert caught.value.custom_id == "job-1"


# ---------------------------------------------------------------------------- to OpenAI


def test_a_request_as_openai_messages() -> None:
    request = Request(
        messages=[
            Message.user("Look.", ImagePart(data=PNG, media_type="image/png", detail="high")),
            Message(
                "assistant",
                (ThinkingPart("t"), TextPart("Calling."), ToolCallPart("c1", "w", {"a": 1})),
            ),
            Message.tool(ToolResultPart("c1", "one", "w"), ToolResultPart("c2", "two", cache=True)),
        ],
        system="Be brief.",
        cache_system=True,
    )
    ephemeral = {"type": "ephemeral"}
    assert openai_messages(request) == [
        {
            "role": "system",
            "content": [{"type": "text", "text": "Be brief.", "cache_control": ephemeral}],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look."},
                {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "high"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Calling.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"a": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {
            "role": "tool",
            "tool_call_id": "c2",
            "content": [{"type": "text", "text": "two", "cache_control": ephemeral}],
        },
    ]
    assert Message.user("hi").to_openai() == [{"role": "user", "content": "hi"}]


def test_what_openai_cannot_carry_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="not its URL"):
        Message.user(DocumentPart(url="https://example.com/a.pdf")).to_openai()
    with pytest.raises(InvalidRequestError, match="only text and tool calls"):
        Message.assistant(ImagePart(url="https://example.com/a.png")).to_openai()


# ---------------------------------------------------------------------------- round trips

_text = st.text(max_size=12)
_ids = st.text(min_size=1, max_size=8)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=6,
)
_arguments = st.dictionaries(_text, _json, max_size=3)
_cache = st.booleans()
_detail = st.sampled_from([None, "auto", "low", "high"])
_user_parts = st.one_of(
    st.builds(TextPart, _text, cache=_cache),
    st.builds(
        ImagePart,
        url=st.builds("https://example.com/{}".format, st.text("abc/", max_size=6)),
        detail=_detail,
        cache=_cache,
    ),
    st.builds(
        ImagePart,
        data=st.binary(max_size=16),
        media_type=st.sampled_from(["image/png", "image/jpeg"]),
        detail=_detail,
        cache=_cache,
    ),
    st.builds(
        DocumentPart,
        data=st.binary(max_size=16),
        media_type=st.sampled_from(["application/pdf", "text/plain"]),
        name=st.none() | _ids,
        cache=_cache,
    ),
)
_user = st.builds(
    lambda parts, cache: Message("user", parts, cache=cache),
    st.lists(_user_parts, min_size=1, max_size=4),
    _cache,
)
_assistant = st.builds(
    lambda texts, calls, cache: Message("assistant", (*texts, *calls), cache=cache),
    st.lists(st.builds(TextPart, _text, cache=_cache), max_size=2),
    st.lists(st.builds(ToolCallPart, _ids, _ids, _arguments), max_size=2),
    _cache,
).filter(lambda m: len(m.content) > 0)
_tool = st.builds(
    lambda results, cache: Message("tool", results, cache=cache),
    st.lists(st.builds(ToolResultPart, _ids, _text, cache=_cache), min_size=1, max_size=3),
    _cache,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_user, _assistant, _tool))
def test_message_to_openai_and_back_is_the_same_message(message: Message) -> None:
    assert parse_messages(message.to_openai()).messages == (message,)


def _openai_conversations() -> st.SearchStrategy[list[dict[str, Any]]]:
    text_part = st.builds(lambda text: {"type": "text", "text": text}, _text)
    image_part = st.builds(
        lambda url, detail: {
            "type": "image_url",
            "image_url": {"url": url, **({"detail": detail} if detail else {})},
        },
        st.sampled_from(["https://example.com/cat.png", PNG_URL]),
        _detail,
    )
    file_part = st.builds(
        lambda data, name: {
            "type": "file",
            "file": {
                "file_data": "data:application/pdf;base64," + base64.b64encode(data).decode(),
                **({"filename": name} if name else {}),
            },
        },
        st.binary(max_size=12),
        st.none() | _ids,
    )
    user = st.builds(
        lambda content: {"role": "user", "content": content},
        _text | st.lists(st.one_of(text_part, image_part, file_part), min_size=2, max_size=3),
    )
    call = st.builds(
        lambda i, name, args: {
            "id": i,
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        },
        _ids,
        _ids,
        _arguments,
    )

    @st.composite
    def turn(draw: Any) -> list[dict[str, Any]]:
        calls = draw(st.lists(call, max_size=2, unique_by=lambda c: c["id"]))
        content = draw(st.none() | _text) if calls else draw(_text)
        assistant: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            assistant["tool_calls"] = calls
        results = [{"role": "tool", "tool_call_id": c["id"], "content": draw(_text)} for c in calls]
        return [draw(user), assistant, *results]

    system = st.none() | _text
    return st.builds(
        lambda s, turns: (
            ([{"role": "system", "content": s}] if s is not None else [])
            + [m for t in turns for m in t]
        ),
        system,
        st.lists(turn(), min_size=1, max_size=3),
    )


@settings(max_examples=200, deadline=None)
@given(_openai_conversations())
def test_openai_messages_read_and_written_back_are_the_same_list(
    messages: list[dict[str, Any]],
) -> None:
    conversation = parse_messages(messages)
    request = Request(messages=conversation.messages, system=conversation.system)
    assert openai_messages(request) == messages


# ---------------------------------------------------------------------------- batches, CLI


def test_batch_inputs_take_openai_messages(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(
        json.dumps({"custom_id": "full", "messages": PIRATE, "temperature": 0.1})
        + "\n"
        + json.dumps({"id": "short", "messages": CLASSIC})
        + "\n"
        + json.dumps(
            {
                "custom_id": "bad",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}],
            }
        )
        + "\n"
    )
    full, short, bad = read_jsonl(path)
    request = normalise(full, 0, "fast")
    assert (request.custom_id, request.system, request.messages) == (
        "full",
        "Talk like a pirate.",
        (Message.user("Are semicolons optional in JavaScript?"),),
    )
    request = normalise(short, 1, "fast")
    assert (request.custom_id, request.system, len(request.messages)) == (
        "short",
        "You are a helpful assistant.",
        3,
    )
    in_code = normalise(BatchRequest(id="code", messages=CLASSIC), 2, "fast")
    assert in_code.fingerprint() == request.fingerprint()
    with pytest.raises(BatchInputError) as caught:
        normalise(bad, 2, "fast")
    assert (caught.value.file, caught.value.line) == (str(path), 3)
    assert "messages[0].content[0].image_url: expected an object with a url" in str(caught.value)


def test_a_batch_request_takes_a_prompt_or_messages_not_both() -> None:
    with pytest.raises(BatchInputError, match="not both"):
        normalise(BatchRequest(id="x", prompt="hi", messages=PIRATE), 0, "fast")
    with pytest.raises(BatchInputError, match="either 'prompt' or 'messages'"):
        normalise({"id": "x", "prompt": "hi", "messages": PIRATE}, 0, "fast")


def test_a_job_runs_openai_messages(scripted: Any, tmp_path: Path) -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(scripted, name="scripted")
    from relay_core.testing import hub_for

    with hub_for(CATALOG, plugins=registry) as hub, RelayClient(tmp_path / "ws", hub=hub) as relay:
        relay.submit_batch(
            [{"custom_id": "a", "messages": PIRATE}], job_id="j", model="fast", mode="engine"
        )
        (item,) = list(relay.iter_results("j"))
    assert item.response is not None
    assert item.response.text == "echo: Are semicolons optional in JavaScript?"
    assert scripted.received[-1].system == "Talk like a pirate."


@pytest.fixture
def runner(scripted: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    registry = PluginRegistry(autoload=False)
    registry.register(scripted, name="scripted")
    monkeypatch.setattr(cli_module, "_shared_registry", registry)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relay.yaml").write_text(CATALOG)
    return CliRunner()


def test_relay_chat_reads_messages_from_stdin(runner: CliRunner, scripted: Any) -> None:
    result = runner.invoke(cli, ["chat", "fast", "-"], input=json.dumps(PIRATE))
    assert result.exit_code == 0, result.output
    assert result.output == "echo: Are semicolons optional in JavaScript?\n"
    assert scripted.received[-1].system == "Talk like a pirate."
    body = json.dumps({"model": "gpt-4o", "messages": CLASSIC})
    assert runner.invoke(cli, ["chat", "fast", "-"], input=body).output == (
        "echo: Where was it played?\n"
    )
    # Text that only looks like JSON is a prompt.
    assert (
        runner.invoke(cli, ["chat", "fast", "-"], input="[INST] hi").output == "echo: [INST] hi\n"
    )


def test_relay_chat_reports_a_bad_message_without_a_traceback(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["chat", "fast", "-"], input='[{"role": "robot", "content": "x"}]')
    assert result.exit_code != 0
    assert "messages[0].role: unknown role 'robot'" in result.output
    assert "Traceback" not in result.output
