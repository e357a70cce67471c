"""A GenerateContentResponse as Relay's :class:`Response`: Gemini's parts in order with
their thought signatures, ids for the calls Gemini gave none, usage, finish reasons, and
prompts Gemini refused.

Pure functions of the answer's JSON; the stream (:mod:`relay_gemini.events`) and batch
results (:mod:`relay_gemini.batches`) read their pieces with these too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from relay_core.plugin import (
    ContentPolicyError,
    FinishReason,
    MalformedResponse,
    Part,
    Response,
    TextPart,
    ThinkingPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
)

__all__ = [
    "GENERATED_ID_PREFIX",
    "SHAPE_ERRORS",
    "finish_reason",
    "logprobs",
    "malformed",
    "parts",
    "raise_if_blocked",
    "response",
    "usage",
]

# The Gemini API often leaves functionCall.id out. Relay needs an id to pair results with
# calls, so one is derived from the answer; ids with this prefix are Relay's and are never
# sent back to Gemini, which did not issue them.
GENERATED_ID_PREFIX = "gemini-call-"

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    # The model produced a call Gemini could not accept: the turn ended on an error.
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
}
# What a malformed answer raises on its way through a parser, turned into MalformedResponse.
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


def malformed(message: str, provider: str) -> MalformedResponse:
    """The error for an answer that came with a 200 but cannot be read."""
    return MalformedResponse(message, provider=provider, status_code=200)


def response(body: Any, model: str, provider: str) -> Response:
    """``body``, a GenerateContentResponse, as a Response; a refused prompt raises
    ContentPolicyError, an answer of another shape MalformedResponse."""
    if isinstance(body, dict):
        raise_if_blocked(body, provider, model)
    try:
        return _response(body, model)
    except MalformedResponse as error:
        error.provider = error.provider or provider
        raise
    except SHAPE_ERRORS as error:
        raise malformed(
            f"answer has an unexpected shape: {type(error).__name__}: {error}", provider
        ) from error


def raise_if_blocked(body: Mapping[str, Any], provider: str, model: str) -> None:
    """A prompt Gemini refused comes as a 200 with promptFeedback and no candidates."""
    feedback = body.get("promptFeedback")
    if body.get("candidates") or not isinstance(feedback, dict):
        return
    reason = feedback.get("blockReason")
    if not reason:
        return
    detail = feedback.get("blockReasonMessage")
    message = f"the prompt was blocked ({reason})" + (f": {detail}" if detail else "")
    raise ContentPolicyError(message, provider=provider, model=model)


def usage(meta: Mapping[str, Any]) -> Usage:
    """``usageMetadata`` as Relay's usage."""
    # candidatesTokenCount leaves the thoughts out; Relay's output_tokens include them.
    # Tokens of server-side tool results are read as input, as they are billed.
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0)
        + int(meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=int(meta.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def parts(wire: Sequence[Mapping[str, Any]], response_id: Any, calls: int = 0) -> Iterator[Part]:
    """Gemini's parts in order, each with the signature Gemini put on it. ``calls``
    counts the calls before these parts (a stream reads them chunk by chunk)."""
    for part in wire:
        signature = part.get("thoughtSignature")
        if "functionCall" in part:
            yield _call(part, response_id, calls)
            calls += 1
        elif "text" in part:
            text = part["text"]
            if not isinstance(text, str):
                raise MalformedResponse("a text part holds no text")
            if part.get("thought") and (text or signature):
                yield ThinkingPart(text, signature=signature)
            elif text or signature:
                yield TextPart(text, signature=signature)
        # other parts (executable code, generated media...) are kept in raw only


def finish_reason(reason: Any, has_calls: bool) -> FinishReason:
    """A candidate's ``finishReason`` as Relay's; a turn that stopped on calls is
    ``tool_calls``."""
    finish: FinishReason = _FINISH.get(reason, "unknown") if reason else "unknown"
    return "tool_calls" if finish == "stop" and has_calls else finish


def _generated_id(response_id: Any, index: int, name: str, args: Any) -> str:
    """A stable id for a call Gemini gave none: the same for the same call in the same
    answer, streamed or not."""
    seed = json.dumps([response_id, index, name, args], sort_keys=True, ensure_ascii=False)
    return GENERATED_ID_PREFIX + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _call(part: Mapping[str, Any], response_id: Any, index: int) -> ToolCallPart:
    call = part["functionCall"]
    name = call["name"]
    args = call.get("args") or {}
    if not isinstance(name, str) or not isinstance(args, dict):
        raise MalformedResponse(f"function call {name!r} has arguments that are not an object")
    call_id = call.get("id") or _generated_id(response_id, index, name, args)
    return ToolCallPart(call_id, name, args, signature=part.get("thoughtSignature"))


def logprobs(candidate: Mapping[str, Any]) -> list[TokenLogprob]:
    """A candidate's ``logprobsResult`` as Relay's log probabilities: the chosen tokens,
    each with the top candidates at its step when they were asked for."""
    result = candidate.get("logprobsResult") or {}
    chosen = result.get("chosenCandidates") or []
    tops = result.get("topCandidates") or []
    found: list[TokenLogprob] = []
    for step, token in enumerate(chosen):
        alternatives = tops[step].get("candidates") or [] if step < len(tops) else []
        found.append(
            TokenLogprob(
                str(token.get("token", "")),
                float(token.get("logProbability", 0.0)),
                [
                    (str(a.get("token", "")), float(a.get("logProbability", 0.0)))
                    for a in alternatives
                ],
            )
        )
    return found


def _response(body: Any, model: str) -> Response:
    candidates = body.get("candidates") or []
    if not candidates:
        raise MalformedResponse("the answer has no candidates")
    candidate = candidates[0]
    wire = (candidate.get("content") or {}).get("parts") or []
    content = tuple(parts(wire, body.get("responseId")))
    has_calls = any(isinstance(p, ToolCallPart) for p in content)
    return Response(
        content=content,
        model=body.get("modelVersion") or model,
        id=body.get("responseId"),
        finish_reason=finish_reason(candidate.get("finishReason"), has_calls),
        usage=usage(body.get("usageMetadata") or {}),
        logprobs=logprobs(candidate),
        raw=body,
    )
