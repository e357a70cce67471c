"""A request of a system prompt alone: the Messages API wants at least one message, so
it is refused before any call, naming the provider."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from anthropic_support import MODEL, ok

from relay_core import Hub, UnsupportedCapability
from relay_core.testing import FakeServer


def test_a_system_prompt_alone_is_refused_before_the_call(
    make_hub: Callable[..., Hub],
) -> None:
    server = FakeServer(ok())
    with pytest.raises(UnsupportedCapability) as caught:
        make_hub(server).chat(f"anthropic/{MODEL}", system="Write a haiku.")
    assert str(caught.value).startswith(f"anthropic/{MODEL} does not support a request with")
    assert caught.value.provider == "anthropic"
    assert server.requests == []
