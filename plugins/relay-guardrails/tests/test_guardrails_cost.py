"""Cost ceilings: per call from an estimate before and the real cost after (relay-mock's
price list: mock/echo costs $0.50 in and $1.50 out per million tokens), and per batch
job, where only the requests after the budget is spent fail, each with the rule in its
result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import relay_guardrails
import relay_mock
from relay_core import BatchRequest, GuardrailViolation, Hub, RelayClient, hookimpl
from relay_core.testing import hub_for
from relay_guardrails import Guardrails

MakeHub = Callable[..., Hub]
MakeClient = Callable[[], RelayClient]

# 4,000 characters: the estimate says about 1,005 input tokens; relay-mock counts each
# "a" as a token, so the real input is 2,003 tokens and the real cost twice the guess.
LONG = "a " * 2000


class Unpriced:
    """relay-mock's adapter under a provider name no pricing source knows."""

    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        register("unpriced", "relay_mock._provider:MockProvider")


def test_an_expensive_call_is_refused_before_it_is_sent(make_hub: MakeHub) -> None:
    hub = make_hub("plugins:\n  guardrails: {max_cost_per_call: 0.001}\n")
    assert hub.chat("mock/echo", "cheap", max_tokens=10).text == "cheap"
    # 1,005 tokens at $0.50/M + 1,000 at $1.50/M: $0.0020025, over $0.001.
    with pytest.raises(GuardrailViolation) as caught:
        hub.chat("mock/echo", LONG, max_tokens=1000)
    assert caught.value.rule == "max_cost_per_call"
    assert "may cost $0.0020025" in str(caught.value)
    assert "1000 output tokens (max_tokens)" in str(caught.value)


def test_without_max_tokens_the_assumed_output_is_priced(make_hub: MakeHub) -> None:
    hub = make_hub("plugins:\n  guardrails: {max_cost_per_call: 0.001}\n")
    # 4 tokens in, 1,024 assumed out: $0.001538.
    with pytest.raises(GuardrailViolation, match="1024 output tokens \\(assumed_output_tokens\\)"):
        hub.chat("mock/echo", "tell me everything")
    lower = make_hub(
        "plugins:\n  guardrails: {max_cost_per_call: 0.001, assumed_output_tokens: 100}\n"
    )
    assert lower.chat("mock/echo", "tell me everything").text == "tell me everything"


def test_the_real_cost_is_checked_after_the_call(make_hub: MakeHub) -> None:
    hub = make_hub("plugins:\n  guardrails: {max_cost_per_call: 0.001}\n")
    # Estimated at $0.000504, the call really costs 2,003 x $0.50/M + $1.50/M: $0.001003.
    with pytest.raises(GuardrailViolation) as caught:
        hub.chat("mock/echo", LONG, max_tokens=1)
    assert caught.value.rule == "max_cost_per_call"
    assert "the call cost $0.001003, more than the $0.001 allowed" in str(caught.value)


def test_the_estimate_uses_the_pricing_profile(make_hub: MakeHub) -> None:
    catalog = """\
models:
  discounted: {target: mock/echo, pricing_profile: tenth}
pricing_profiles:
  tenth: {multiplier: 0.1}
plugins:
  guardrails: {max_cost_per_call: 0.001}
"""
    hub = make_hub(catalog)
    with pytest.raises(GuardrailViolation, match="max_cost_per_call"):
        hub.chat("mock/echo", LONG, max_tokens=1000)
    # A tenth of $0.0020025 fits; so does the real cost, a tenth of $0.0025.
    assert hub.chat("discounted", LONG, max_tokens=1000).text.startswith("a a")


@pytest.mark.parametrize("rule", ["max_cost_per_call", "max_cost_per_job"])
def test_an_unknown_price_is_allowed_or_refused(rule: str) -> None:
    allow = hub_for(
        f"plugins:\n  guardrails: {{{rule}: 0.01}}\n", Unpriced(), relay_mock, relay_guardrails
    )
    with allow:
        assert allow.chat("unpriced/echo", "x").text == "x"
    refuse = hub_for(
        f"plugins:\n  guardrails: {{{rule}: 0.01, unknown_price: refuse}}\n",
        Unpriced(),
        relay_mock,
        relay_guardrails,
    )
    with refuse:
        if rule == "max_cost_per_call":
            with pytest.raises(GuardrailViolation, match="price of unpriced/echo is unknown"):
                refuse.chat("unpriced/echo", "x")
        else:  # a job budget only concerns the requests of a job
            assert refuse.chat("unpriced/echo", "x").text == "x"
        assert refuse.chat("mock/echo", "x").text == "x"


# -- per job --------------------------------------------------------------------------

# Each request costs 5 tokens in and 2 out: $0.0000055. A budget of two and a half
# requests lets three run (the third starts with $0.000011 spent, under the budget).
BUDGET_CATALOG = """\
providers:
  mock:
    max_retries: 0
    options:
      faults:
        down: {kind: server_error}
models:
  fast: mock/echo
  primary-down: mock/down
groups:
  resilient: {strategy: fallback, members: [primary-down, fast]}
plugins:
  guardrails:
    max_cost_per_job: 0.00001375
    blocked_patterns: [{name: no-secrets, pattern: "(?i)password\\\\s*[:=]"}]
"""


@pytest.fixture
def budget_client(tmp_path: Path) -> Iterator[MakeClient]:
    """Clients over one workspace, each with its own hub (and so its own guardrails)."""
    hubs: list[Hub] = []

    def make() -> RelayClient:
        hubs.append(hub_for(BUDGET_CATALOG, relay_mock, relay_guardrails))
        # No workspace cache: every request is a call, so every call is priced.
        return RelayClient(tmp_path / "ws", hub=hubs[-1], cache=False)

    yield make
    for hub in hubs:
        hub.close()


def the_guardrails(hub: Hub) -> Guardrails:
    (guard,) = [p for p in hub.plugins.pm.get_plugins() if isinstance(p, Guardrails)]
    return guard


@pytest.mark.parametrize("model", ["fast", "resilient"])
def test_a_job_fails_only_the_requests_after_its_budget(
    budget_client: MakeClient, waits: list[float], model: str
) -> None:
    with budget_client() as client:
        client.submit_batch(
            [BatchRequest(id=f"r{i}", prompt=f"question {i:02}") for i in range(8)],
            job_id="budgeted",
            model=model,
            mode="engine",
            concurrency=1,  # in order, so which requests ran is known
        )
        items = list(client.iter_results("budgeted"))
        spent = the_guardrails(client.hub).spent("budgeted")
        job = client.get_job("budgeted")
    answered = [item.custom_id for item in items if item.response is not None]
    assert answered == ["r0", "r1", "r2"]
    for item in items[3:]:
        assert item.error is not None
        assert item.error.kind == "GuardrailViolation"
        assert f"request {item.custom_id!r}: guardrail 'max_cost_per_job' refused" in (
            item.error.message
        )
        assert "job 'budgeted' has spent $0.0000165 of its $0.00001375 budget" in (
            item.error.message
        )
    assert spent == pytest.approx(3 * 0.0000055)
    assert (job.counts.completed, job.counts.failed) == (3, 5)
    assert job.cost.amount == pytest.approx(spent)


def test_each_job_has_its_own_budget(budget_client: MakeClient) -> None:
    with budget_client() as client:
        for job_id in ("first", "second"):
            client.submit_batch(
                [BatchRequest(id=f"r{i}", prompt=f"question {i:02}") for i in range(4)],
                job_id=job_id,
                model="fast",
                mode="engine",
                concurrency=1,
            )
        for job_id in ("first", "second"):
            assert client.get_job(job_id).counts.completed == 3
        # Calls outside a job are not counted against any.
        assert client.hub.chat("fast", "question 99").text == "question 99"


def test_a_resumed_job_can_carry_its_earlier_spend(
    budget_client: MakeClient,
) -> None:
    with budget_client() as client:
        client.hub.chat("fast", "warm up")  # configures the hub's guardrails
        the_guardrails(client.hub).charge("carried", 0.00001)
        client.submit_batch(
            [BatchRequest(id=f"r{i}", prompt=f"question {i:02}") for i in range(3)],
            job_id="carried",
            model="fast",
            mode="engine",
            concurrency=1,
        )
        assert client.get_job("carried").counts.completed == 1


def test_a_violation_in_a_batch_fails_that_request_alone(
    budget_client: MakeClient,
) -> None:
    requests = [
        BatchRequest(id="ok", prompt="hello"),
        BatchRequest(id="leaky", prompt="my password: hunter2"),
        BatchRequest(id="fine", prompt="bye"),
    ]
    with budget_client() as client:
        client.submit_batch(requests, job_id="mixed", model="resilient", mode="engine")
        items = {item.custom_id: item for item in client.iter_results("mixed")}
    assert items["ok"].response is not None
    assert items["fine"].response is not None
    error = items["leaky"].error
    assert error is not None
    assert error.kind == "GuardrailViolation"
    assert "guardrail 'no-secrets' refused" in error.message
    assert "hunter2" not in error.message
