"""relay-mock passes the core's provider conformance suite."""

from __future__ import annotations

from typing import Any

import relay_mock
from relay_core.testing import CONFORMANCE_TEXT, ProviderConformance


class TestConformance(ProviderConformance):
    plugin = relay_mock
    provider = "mock"
    not_applicable = {"authentication": "relay-mock needs no key, so none can be rejected"}  # noqa: RUF012

    def scenario_kwargs(self, scenario: str) -> dict[str, Any]:
        script: dict[str, Any] = {
            "text": {"reply": CONFORMANCE_TEXT},
            "tool_call": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            "rate_limit": {"fault": {"kind": "rate_limit", "retry_after": 3}},
        }[scenario]
        return {"mock": script}
