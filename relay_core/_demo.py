"""``relay demo``: a tour of the unified API on the offline mock provider."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from relay_core.batch._client import RelayClient
from relay_core.batch._types import BatchRequest
from relay_core.config import parse_catalog
from relay_core.hub import Hub
from relay_core.plugins import PluginRegistry
from relay_core.types import EndEvent, Message, TextDelta, Tool, ToolResultPart

DEMO_CATALOG = """\
providers:
  mock:
    max_retries: 0            # fail over at once in the demo; the default is 3 retries
    options:
      faults:
        flaky: {kind: server_error}
models:
  fast: {target: mock/echo, description: offline echo model}
  flaky: {target: mock/flaky, description: always answers HTTP 500}
groups:
  resilient: {strategy: fallback, members: [flaky, fast]}
"""

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)

CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "population": {"type": "integer", "minimum": 0},
        "landmarks": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["city", "population", "landmarks"],
    "additionalProperties": False,
}


def _cost(response: Any) -> str:
    cost = response.cost
    amount = "unknown" if cost.amount is None else f"${cost.amount:.8f}"
    usage = response.usage
    return f"{usage.input_tokens} in / {usage.output_tokens} out tokens, {amount} ({cost.source})"


def run_demo(echo: Callable[..., Any], *, plugins: PluginRegistry | None = None) -> None:
    """Print the tour through ``echo`` (``click.echo`` or ``print``)."""
    catalog = parse_catalog(DEMO_CATALOG, path="<demo catalog>")
    with Hub(catalog, plugins=plugins) as hub:
        echo("== chat")
        answer = hub.chat("fast", "What is the capital of France?", system="Be brief.")
        echo(f"{answer.text}\n   {_cost(answer)}")

        echo("\n== streaming")
        pieces = []
        for event in hub.stream("fast", "Streaming sends the answer piece by piece"):
            if isinstance(event, TextDelta):
                pieces.append(event.text)
            elif isinstance(event, EndEvent):
                echo("|".join(pieces))
                echo(f"   {len(pieces)} deltas, then the end event: {_cost(event.response)}")

        echo("\n== tool call")
        question = Message.user("What is the weather in Paris? Use get_weather.")
        first = hub.chat("fast", [question], tools=[WEATHER])
        for call in first.tool_calls:
            echo(f"model calls {call.name}({json.dumps(call.arguments)})")
        results = [
            ToolResultPart.from_value(
                call.id,
                {"city": call.arguments.get("city"), "sky": "clear", "celsius": 21},
                name=call.name,
            )
            for call in first.tool_calls
        ]
        final = hub.chat(
            "fast", [question, first.to_message(), Message.tool(*results)], tools=[WEATHER]
        )
        echo(f"answer after the tool result: {final.text}")

        echo("\n== structured output")
        structured = hub.chat("fast", "Describe Paris.", response_schema=CITY_SCHEMA)
        echo(json.dumps(structured.json(), indent=2))

        echo("\n== fallback group")
        routed = hub.chat("resilient", "Hello from a fallback group")
        route = routed.metadata["route"]
        failed = ", ".join(f"{f['member']} ({f['error']})" for f in route["failed"])
        echo(f"answered by {route['member']!r} after {failed} failed: {routed.text}")

    _batch_tour(echo, plugins)


BATCH_SIZE = 300


def _batch_tour(echo: Callable[..., Any], plugins: PluginRegistry | None) -> None:
    """The same few hundred requests through the engine and through the mock's batch API,
    in a throwaway workspace."""
    import tempfile

    catalog = parse_catalog(
        "providers:\n  mock:\n    options: {batch_duration: 0.5}\nmodels:\n  fast: mock/echo\n",
        path="<demo catalog>",
    )
    requests = [
        BatchRequest(id=f"q{i}", prompt=f"Label item {i}: positive or negative?")
        for i in range(BATCH_SIZE)
    ]
    with (
        tempfile.TemporaryDirectory(prefix="relay-demo-") as directory,
        RelayClient(directory, hub=Hub(catalog, plugins=plugins)) as client,
    ):
        echo(f"\n== batch: {BATCH_SIZE} requests (workspace {directory})")
        started = time.perf_counter()
        job = client.submit_batch(requests, job_id="demo-engine", model="fast", mode="engine")
        echo(
            f"engine: {job.counts.completed} answered in {time.perf_counter() - started:.2f}s, "
            f"{_amount(job.cost)}"
        )
        started = time.perf_counter()
        again = client.submit_batch(requests, job_id="demo-rerun", model="fast", mode="engine")
        stats = client.last_engine_stats
        cached = stats.cached if stats else 0
        echo(
            f"engine rerun: {cached} from the cache in {time.perf_counter() - started:.2f}s, "
            f"{_amount(again.cost)}"
        )
        started = time.perf_counter()
        job = client.submit_batch(requests, job_id="demo-batch", model="fast", mode="batch")
        echo(f"batch API: submitted as {len(job.provider_batches)} provider batch, {job.status}")
        client.wait("demo-batch", poll_interval=0.1)
        results = client.retrieve_batch_results("demo-batch")
        job = client.get_job("demo-batch")
        echo(
            f"batch API: {job.counts.completed} answered in {time.perf_counter() - started:.2f}s, "
            f"{_amount(job.cost)} (batch discount applied: {job.cost.batch_discount_applied})"
        )
        first = results[0]
        answer = first.response.text if first.response else first.error
        echo(f"first result: {first.custom_id} -> {answer!r}")


def _amount(cost: Any) -> str:
    return "cost unknown" if cost.amount is None else f"${cost.amount:.6f} ({cost.source})"
