"""What OpenAI's wire APIs (Chat Completions, the Responses API, batches) share: data
URLs, tool-call arguments, token counts, and errors that come with no HTTP status."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from relay_core.plugin import (
    ErrorRule,
    ImagePart,
    MalformedResponse,
    Part,
    ProviderError,
    TextPart,
    classify_stream_error,
)

__all__ = [
    "arguments",
    "data_url",
    "error_status",
    "image_url",
    "int_field",
    "merge_text",
    "reported_error",
]

# Error codes (and types) as the HTTP status each stands for, for errors that come with
# no HTTP status (see error_status); the core then classifies them as that answer, so
# insufficient_quota is QuotaExceeded, context_length_exceeded ContextWindowExceeded...
_ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "invalid_prompt": 400,
    "context_length_exceeded": 400,
    "invalid_api_key": 401,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "server_is_overloaded": 503,
    "slow_down": 503,
    "vector_store_timeout": 504,
    # The Responses API's image errors: the input is wrong, not the service.
    **dict.fromkeys(
        (
            "invalid_image",
            "invalid_image_format",
            "invalid_base64_image",
            "invalid_image_url",
            "image_too_large",
            "image_too_small",
            "image_parse_error",
            "image_content_policy_violation",
            "invalid_image_mode",
            "image_file_too_large",
            "unsupported_image_media_type",
            "empty_image_file",
            "failed_to_download_image",
            "image_file_not_found",
        ),
        400,
    ),
}


def data_url(media_type: str, base64_text: str) -> str:
    return f"data:{media_type};base64,{base64_text}"


def image_url(part: ImagePart) -> str:
    if part.url is not None:
        return part.url
    return data_url(part.media_type or "image/png", part.base64())


def arguments(name: str, text: str | None, provider: str) -> dict[str, Any]:
    """A tool call's arguments, sent as a JSON string, as the object they must be."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise MalformedResponse(
            f"tool call {name!r} has arguments that are not JSON: {error}", provider=provider
        ) from error
    if not isinstance(value, dict):
        raise MalformedResponse(
            f"tool call {name!r} arguments are not a JSON object", provider=provider
        )
    return value


def int_field(mapping: Any, key: str) -> int:
    """``mapping[key]`` when it is an int, else 0 (token counts may be missing or null)."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, int) else 0


def merge_text(parts: list[Part]) -> tuple[Part, ...]:
    """Adjacent text parts as one, as a stream's assembler joins them."""
    merged: list[Part] = []
    for part in parts:
        if merged and isinstance(part, TextPart) and isinstance(merged[-1], TextPart):
            merged[-1] = TextPart(merged[-1].text + part.text)
        else:
            merged.append(part)
    return tuple(merged)


def error_status(error: Mapping[str, Any]) -> int:
    """The HTTP status an error object with no HTTP answer of its own stands for (an
    error inside a 200 stream, a failed response, a batch error line): a status it
    carries (OpenRouter's numeric ``code``, Groq's ``status_code``), else its ``code``,
    else its ``type`` (see ``_ERROR_STATUS``). Anything unknown counts as the service's
    own trouble, as a 500 would."""
    code = error.get("code")
    for status in (code, error.get("status_code")):
        if isinstance(status, int) and not isinstance(status, bool) and 400 <= status < 600:
            return status
    for key in (code, error.get("type")):
        if isinstance(key, str) and key in _ERROR_STATUS:
            return _ERROR_STATUS[key]
    return 500


def reported_error(
    error: Any, *, provider: str, model: str, rules: Sequence[ErrorRule]
) -> ProviderError:
    """An error the provider reported with no HTTP status of its own (inside a 200
    stream, or a failed response), classified as the answer its code stands for."""
    error = error if isinstance(error, dict) else {"message": str(error or "the request failed")}
    return classify_stream_error(
        error_status(error), {"error": error}, rules=rules, provider=provider, model=model
    )
