"""The guardrails themselves: the two per-call hooks, and the spend of each batch job."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any, Literal

from relay_core.plugin import (
    CallInfo,
    GuardrailViolation,
    ModelPrice,
    Request,
    Response,
    TextPart,
    ThinkingPart,
    TokenCount,
    ToolCallPart,
    ToolResultPart,
    estimate_tokens,
    hookimpl,
)
from relay_guardrails._settings import DEFAULT_CALLER, PatternRule, Settings

__all__ = ["Guardrails"]

Side = Literal["input", "output"]


class Guardrails:
    """Guardrails configured by :class:`Settings`: a plugin object for a hub's registry.

    The hub builds one from its catalog's ``plugins.guardrails``; an application may
    build its own and register it: ``hub.plugins.register(Guardrails.from_mapping({...}))``.
    The spend of each batch job is kept here, so it lasts as long as this object
    (the hub's life, in one process); :meth:`charge` seeds it for a resumed job.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._spent: dict[str, float] = {}
        self._lock = threading.Lock()  # engine workers and sync callers share one object

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> Guardrails:
        """Guardrails from settings written in code, in the catalog's shape."""
        return cls(Settings.parse(settings))

    def __repr__(self) -> str:
        return f"Guardrails({self.settings!r})"

    # -- job spend ----------------------------------------------------------------------

    def spent(self, job_id: str) -> float:
        """USD the calls of ``job_id`` have cost so far, as this object has seen them."""
        with self._lock:
            return self._spent.get(job_id, 0.0)

    def charge(self, job_id: str, amount: float) -> float:
        """Add ``amount`` USD to the spend of ``job_id`` and return the new total (the
        hooks do this for every priced answer; call it to carry a resumed job's earlier
        spend into a new process)."""
        with self._lock:
            total = self._spent[job_id] = self._spent.get(job_id, 0.0) + amount
            return total

    # -- the hooks ----------------------------------------------------------------------

    @hookimpl
    def relay_guardrail_pre(self, request: Request, call: CallInfo) -> None:
        """Refuse a request before it is sent: allowed models, the job's budget, input
        size, the call's estimated cost, then the patterns (cheapest first)."""
        settings = self.settings
        if settings.allowed_models is not None:
            self._check_allowed(settings.allowed_models, request, call)
        if settings.max_cost_per_job is not None and call.job_id is not None:
            self._check_job_budget(settings.max_cost_per_job, request, call)
        if settings.max_input_tokens or settings.max_cost_per_call is not None:
            tokens = self._input_tokens(request, call)
            if settings.max_input_tokens:
                self._check_input_tokens(settings.max_input_tokens, tokens, request, call)
            if settings.max_cost_per_call is not None:
                self._check_estimate(settings.max_cost_per_call, tokens.tokens, request, call)
        self._check_patterns("input", dict(_input_texts(request)), request)

    # First, so the job's spend counts every paid answer even when another plugin's
    # post guardrail withholds it.
    @hookimpl(tryfirst=True)
    def relay_guardrail_post(self, request: Request, response: Response, call: CallInfo) -> None:
        """Record the answer's cost against its job, then refuse an answer that cost too
        much, does not fit the response schema, or fails the output patterns."""
        settings = self.settings
        amount = response.cost.amount
        if call.job_id is not None and amount:
            self.charge(call.job_id, amount)
        if settings.max_cost_per_call is not None:
            if amount is None:
                self._unknown_price("max_cost_per_call", request, call)
            elif amount > settings.max_cost_per_call:
                ceiling = _usd(settings.max_cost_per_call)
                raise GuardrailViolation(
                    "max_cost_per_call",
                    f"the call cost {_usd(amount)}, more than the {ceiling} allowed",
                    custom_id=request.custom_id,
                )
        schema = request.response_schema
        answered = response.text or not response.tool_calls  # tools called: no answer yet
        if settings.validate_output_schema and schema is not None and answered:
            from relay_guardrails._schema import schema_problem

            problem = schema_problem(schema, response)
            if problem is not None:
                raise GuardrailViolation(
                    "validate_output_schema", problem, custom_id=request.custom_id
                )
        self._check_patterns("output", dict(_output_texts(response)), request)

    # -- the rules ----------------------------------------------------------------------

    def _check_allowed(
        self, allowed: Mapping[str, tuple[str, ...]], request: Request, call: CallInfo
    ) -> None:
        callers = _callers(request, allowed)
        if not callers:
            raise GuardrailViolation(
                "allowed_models",
                "the request names no caller that allowed_models lists (as "
                f"metadata['caller'] or a tag) and there is no {DEFAULT_CALLER!r} entry",
                custom_id=request.custom_id,
            )
        patterns = [pattern for caller in callers for pattern in allowed[caller]]
        if any(fnmatchcase(call.alias, p) or fnmatchcase(call.target, p) for p in patterns):
            return
        raise GuardrailViolation(
            "allowed_models",
            f"caller {' / '.join(callers)} may not use {call.alias!r} ({call.target}); "
            f"allowed: {', '.join(dict.fromkeys(patterns)) or 'nothing'}",
            custom_id=request.custom_id,
            try_next=True,  # another member of a group may be allowed
        )

    def _check_job_budget(self, budget: float, request: Request, call: CallInfo) -> None:
        assert call.job_id is not None
        spent = self.spent(call.job_id)
        if spent >= budget:
            raise GuardrailViolation(
                "max_cost_per_job",
                f"job {call.job_id!r} has spent {_usd(spent)} of its {_usd(budget)} budget",
                custom_id=request.custom_id,
            )
        if self._price(call) is None:
            self._unknown_price("max_cost_per_job", request, call)

    def _input_tokens(self, request: Request, call: CallInfo) -> TokenCount:
        """The estimate by default; with ``token_count: exact``, the provider's tokenizer
        where it runs in process (never a count endpoint: this runs before every call
        and cannot wait on the network), else the estimate still."""
        if self.settings.token_count == "exact":
            return call.count_tokens(request)
        return TokenCount(tokens=estimate_tokens(request), exact=False, method="estimate")

    def _check_input_tokens(
        self,
        limits: tuple[tuple[str, int], ...],
        tokens: TokenCount,
        request: Request,
        call: CallInfo,
    ) -> None:
        for pattern, limit in limits:
            if fnmatchcase(call.alias, pattern) or fnmatchcase(call.target, pattern):
                if tokens.tokens > limit:
                    size = f"{tokens.tokens}" if tokens.exact else f"about {tokens.tokens}"
                    raise GuardrailViolation(
                        "max_input_tokens",
                        f"the input is {size} tokens, more than the {limit} "
                        f"allowed for {call.alias!r}",
                        custom_id=request.custom_id,
                    )
                return

    def _check_estimate(
        self, ceiling: float, tokens: int, request: Request, call: CallInfo
    ) -> None:
        price = self._price(call)
        if price is None:
            self._unknown_price("max_cost_per_call", request, call)
            return
        output = request.config.max_tokens or self.settings.assumed_output_tokens
        estimate = (tokens * price.input + output * price.output) / 1_000_000
        if estimate > ceiling:
            source = "max_tokens" if request.config.max_tokens else "assumed_output_tokens"
            raise GuardrailViolation(
                "max_cost_per_call",
                f"the call may cost {_usd(estimate)} (about {tokens} input tokens at "
                f"{_usd(price.input)}/M and {output} output tokens ({source}) at "
                f"{_usd(price.output)}/M), more than the {_usd(ceiling)} allowed",
                custom_id=request.custom_id,
            )

    def _price(self, call: CallInfo) -> ModelPrice | None:
        return call.quote().effective()

    def _unknown_price(self, rule: str, request: Request, call: CallInfo) -> None:
        if self.settings.unknown_price == "refuse":
            raise GuardrailViolation(
                rule,
                f"the price of {call.target} is unknown, and unknown_price is refuse",
                custom_id=request.custom_id,
            )

    def _check_patterns(self, side: Side, texts: dict[str, str], request: Request) -> None:
        settings = self.settings
        blocked = [rule for rule in settings.blocked_patterns if rule.covers(side)]
        required = [rule for rule in settings.required_patterns if rule.covers(side)]
        if not blocked and not required:
            return
        for label, text in texts.items():
            if len(text) > settings.max_scan_chars:
                raise GuardrailViolation(
                    "max_scan_chars",
                    f"{label} is {len(text):,} characters, more than the "
                    f"{settings.max_scan_chars:,} patterns may scan",
                    custom_id=request.custom_id,
                )
        # Messages never quote the text: it may hold the very secret a pattern caught.
        for rule in blocked:
            for label, text in texts.items():
                if rule.pattern.search(text):
                    raise GuardrailViolation(
                        rule.name,
                        f"{label} matches the blocked pattern {rule.name!r}",
                        custom_id=request.custom_id,
                    )
        for rule in required:
            if not _found(rule, texts.values()):
                raise GuardrailViolation(
                    rule.name,
                    f"the {side} does not match the required pattern {rule.name!r}",
                    custom_id=request.custom_id,
                )


def _found(rule: PatternRule, texts: Any) -> bool:
    return any(rule.pattern.search(text) for text in texts)


def _callers(request: Request, allowed: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The request's callers that ``allowed`` lists: ``metadata["caller"]`` (a string)
    and its tags, in that order, else the default entry when there is one."""
    named = request.metadata.get("caller")
    candidates = [named] if isinstance(named, str) else []
    candidates += request.tags
    callers = [c for c in dict.fromkeys(candidates) if c in allowed]
    if not callers and DEFAULT_CALLER in allowed:
        return [DEFAULT_CALLER]
    return callers


def _input_texts(request: Request) -> Iterator[tuple[str, str]]:
    """Every text the provider will read, labelled for a message that must not quote it."""
    if request.system:
        yield "the system prompt", request.system
    for number, message in enumerate(request.messages, start=1):
        for index, part in enumerate(message.content):
            label = f"message {number} ({message.role}) part {index + 1}"
            if isinstance(part, (TextPart, ThinkingPart)):
                yield label, part.text
            elif isinstance(part, ToolResultPart):
                yield label, part.content
            elif isinstance(part, ToolCallPart):
                yield label, json.dumps(part.arguments, ensure_ascii=False)


def _output_texts(response: Response) -> Iterator[tuple[str, str]]:
    """Every text of the answer the caller will read."""
    if response.text:
        yield "the answer's text", response.text
    if response.thinking:
        yield "the answer's thinking", response.thinking
    for index, call in enumerate(response.tool_calls):
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        yield f"the arguments of tool call {index + 1} ({call.name})", arguments


def _usd(amount: float) -> str:
    """Dollars with enough decimals to tell small per-call costs apart."""
    if amount >= 1:
        return f"${amount:,.2f}"
    whole, _, fraction = f"{amount:.8f}".rstrip("0").partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"
