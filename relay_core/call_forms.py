"""Requests from the call forms: what ``hub.chat(model, prompt, **options)`` and its kin
take, turned into the :class:`Request` (or :class:`EmbeddingRequest`) the pipeline carries,
and the merges that make a request what one provider receives.

Kept apart from the hub so that everything that turns user input into a request (the hub's
call forms, a handle's, a batch job's input lines) shares one definition, and a request can
be built and checked without a hub (it needs no catalog, plugin or event loop).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, cast

import attrs

from relay_core.embeddings import EmbeddingRequest, InputType
from relay_core.errors import InvalidRequestError
from relay_core.messages import parse_messages, parse_system
from relay_core.types import (
    SERVER_TOOL_PARTS,
    SETTING_ALIASES,
    GenerationConfig,
    Message,
    Request,
    ResponseSchema,
    Tool,
    resolve_aliases,
)

__all__ = [
    "Prompt",
    "build_embedding_request",
    "build_request",
    "merge_kwargs",
    "request_of_call",
    "without_server_tools",
]

Prompt = str | Message | Mapping[str, Any] | Sequence[Message | Mapping[str, Any]] | Request
"""What the call forms take as the prompt: text (one user turn), a message, or a list of
messages as :class:`Message` values or role/content dicts in OpenAI's or Anthropic's
form (see :func:`relay_core.parse_messages`), or a whole :class:`Request`."""

_GENERATION_FIELDS = frozenset(a.name for a in attrs.fields(GenerationConfig)) | frozenset(
    SETTING_ALIASES
)


def _tool(value: Tool | Mapping[str, Any], index: int) -> Tool:
    if isinstance(value, Tool):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(
            f"tools[{index}] must be a Tool or a mapping of name, description and "
            f"parameters, not {type(value).__name__}"
        )
    return Tool(**value)


def build_request(model: str, prompt: Prompt | None = None, **options: Any) -> Request:
    """A :class:`Request` from the convenient call forms.

    ``prompt`` is a string (one user turn), a message, a list of messages, or a whole
    request. Messages are :class:`Message` values or dicts in OpenAI's or Anthropic's
    form (``{"role": "user", "content": "Hi"}``, content parts, ``tool_calls``,
    ``tool`` messages, content blocks with ``cache_control``), read by
    :func:`relay_core.parse_messages`: their ``system``/``developer`` messages join
    ``system`` (after it). ``messages=`` takes the same list, instead of ``prompt``.
    ``system`` is text, or Anthropic's list of text blocks.

    ``options`` are Request fields (``system``, ``tools``, ``custom_id``...) or
    GenerationConfig fields (``temperature``, ``max_tokens``...), which override
    ``config``. ``response_schema`` takes a JSON Schema dict, a :class:`ResponseSchema`,
    or an attrs class or Pydantic model, whose instance the response then carries as
    ``parsed``. A mistake in the messages is an :class:`InvalidRequestError` naming
    where it is (``messages[2].content[1].image_url``).
    """
    custom_id = options.get("custom_id")
    name = "prompt"
    if options.get("messages") is not None:
        if prompt is not None:
            raise InvalidRequestError(
                "give the conversation as the prompt or as messages=, not both",
                custom_id=custom_id,
            )
        prompt, name = options.pop("messages"), "messages"
    options.pop("messages", None)
    try:
        generation = resolve_aliases(
            {k: options.pop(k) for k in list(options) if k in _GENERATION_FIELDS}
        )
    except ValueError as error:
        raise InvalidRequestError(str(error), custom_id=custom_id) from None
    schema = options.get("response_schema")
    if isinstance(schema, dict):
        options["response_schema"] = ResponseSchema(schema=schema)
    elif isinstance(schema, type):
        options["response_schema"] = ResponseSchema.from_type(schema)
    elif schema is not None and not isinstance(schema, ResponseSchema):
        raise InvalidRequestError(
            "response_schema must be a JSON Schema object, a ResponseSchema or a class, "
            f"not {type(schema).__name__}",
            custom_id=custom_id,
        )
    if "tools" in options:
        options["tools"] = tuple(_tool(t, i) for i, t in enumerate(options["tools"] or ()))
    if isinstance(options.get("system"), list):
        options["system"], cached = parse_system(options["system"], custom_id=custom_id)
        options["cache_system"] = options.get("cache_system", False) or cached
    _check_option_names(options, custom_id)
    if isinstance(prompt, Request):
        request = attrs.evolve(prompt, model=prompt.model or model, **options)
    else:
        request = Request(messages=_messages(prompt, name, options), model=model, **options)
    if generation:
        request = attrs.evolve(
            request, config=request.config.merged(GenerationConfig(**generation))
        )
    if not request.messages and not request.system:
        raise InvalidRequestError(
            "a request needs at least one message or a system prompt",
            custom_id=request.custom_id,
        )
    return request


def _check_option_names(options: Mapping[str, Any], custom_id: str | None) -> None:
    """A misspelt or misplaced option is the caller's mistake: say which, and the nearest
    name, instead of ``Request.__init__``'s TypeError."""
    known = {f.name for f in attrs.fields(Request)} | _GENERATION_FIELDS | {"messages"}
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidRequestError(
                f"a call takes no option {name!r}{hint}",
                custom_id=custom_id,
            )


def request_of_call(
    model: str | Request | None, prompt: Prompt | None = None, **options: Any
) -> tuple[str | None, Request]:
    """The name to resolve and the request of a hub's call form: ``(model, prompt)``, or
    a whole request in the model's place (``hub.achat(Request(...))``), whose ``model``
    is then the name."""
    if isinstance(model, Request):
        model, prompt = model.model, model
    return model, build_request(model or "", prompt, **options)


def _messages(prompt: Prompt | None, name: str, options: dict[str, Any]) -> tuple[Message, ...]:
    """The messages of a prompt that is not a Request; the system messages of a list
    are added to ``options["system"]``."""
    if prompt is None:
        return ()
    if isinstance(prompt, str):
        return (Message.user(prompt),)
    if isinstance(prompt, Message):
        return (prompt,)
    items = [prompt] if isinstance(prompt, Mapping) else prompt
    if isinstance(items, Sequence) and all(isinstance(item, Message) for item in items):
        return tuple(cast("Sequence[Message]", items))
    conversation = parse_messages(items, custom_id=options.get("custom_id"), name=name)
    if conversation.system is not None:
        given = options.get("system")
        options["system"] = f"{given}\n\n{conversation.system}" if given else conversation.system
    if conversation.cache_system:
        options["cache_system"] = True
    return conversation.messages


def merge_kwargs(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, key by key at every depth: a call that sets
    ``{"metadata": {"user_id": "u1"}}`` keeps the catalog's other metadata keys. Values
    that are not objects (lists included) are replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        under = merged.get(key)
        if isinstance(value, Mapping) and isinstance(under, Mapping):
            merged[key] = merge_kwargs(under, value)
        else:
            merged[key] = value
    return merged


def without_server_tools(request: Request) -> Request:
    """``request`` without the records of tools a provider ran itself
    (:class:`~relay_core.types.ServerToolCallPart`, ``ServerToolResultPart``), and
    without the messages that held nothing else.

    For a provider that does not run server tools (no ``Capability.SERVER_TOOLS``):
    the records are of work another provider did, encrypted or in its own form, which
    this one can neither check nor use, and its API would refuse them. The answer's
    text, with its citations as plain text, stays. The hub logs what it left out
    (``server_tool_parts_left_out``, at debug level).
    """
    if not any(isinstance(part, SERVER_TOOL_PARTS) for part in request.parts):
        return request
    messages = []
    for message in request.messages:
        kept = tuple(p for p in message.content if not isinstance(p, SERVER_TOOL_PARTS))
        if kept:
            messages.append(attrs.evolve(message, content=kept))
    return attrs.evolve(request, messages=tuple(messages))


def build_embedding_request(
    model: str,
    texts: str | Sequence[str] | EmbeddingRequest | None,
    *,
    dimensions: int | None = None,
    input_type: InputType | None = None,
    custom_id: str | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    provider_kwargs: Mapping[str, Any] | None = None,
) -> EmbeddingRequest:
    """An :class:`EmbeddingRequest` from :meth:`Hub.aembed`'s call form: ``texts`` is a
    string (one vector), a list of strings, or a whole request (returned as it is). A
    value that makes no request is an :class:`InvalidRequestError` naming ``custom_id``."""
    if isinstance(texts, EmbeddingRequest):
        return texts
    if texts is None:
        texts = ()
    elif not isinstance(texts, (str, Sequence)):
        raise InvalidRequestError(
            f"texts must be a string or a list of strings, not {type(texts).__name__}",
            custom_id=custom_id,
        )
    try:
        return EmbeddingRequest(
            inputs=texts,
            model=model,
            dimensions=dimensions,
            input_type=input_type,
            provider_kwargs=dict(provider_kwargs or {}),
            custom_id=custom_id,
            tags=tags,
            metadata=dict(metadata or {}),
        )
    except (TypeError, ValueError) as error:
        raise InvalidRequestError(str(error), custom_id=custom_id) from None
