"""Scenarios that public recordings of Gemini's API show and the first cassettes lacked:
an answer stopped by the safety filter (a candidate with empty ``content`` and
``finishReason: SAFETY``), and implicit-cache usage (``cachedContentTokenCount``). Each
cassette follows the recording that cassettes/relay-gemini/README.md names for it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from gemini_support import MODEL

from relay_core import Hub, Usage

Cassette = Callable[[str], AbstractContextManager[Any]]
TARGET = f"gemini/{MODEL}"


def test_an_answer_stopped_for_safety_is_content_filter_with_no_text(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("safety_stop"):
        got = make_hub().chat(TARGET, "Write a joke about a group of people.")
    # The prompt passed (no promptFeedback block): the answer was cut, so this is an
    # answer with a finish reason, not a ContentPolicyError.
    assert got.finish_reason == "content_filter"
    assert got.content == ()
    assert got.usage == Usage(input_tokens=14, output_tokens=0)


def test_cached_prompt_tokens_are_part_of_the_input(
    make_hub: Callable[..., Hub], cassette: Cassette
) -> None:
    with cassette("cached_tokens"):
        got = make_hub().chat(TARGET, "What is the report's main finding?")
    assert got.text == "The report's main finding is that output rose 4% in 2024."
    assert got.usage == Usage(
        input_tokens=4127, output_tokens=73, cached_input_tokens=4096, reasoning_tokens=57
    )
