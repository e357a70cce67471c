"""The mock provider adapter: offline, deterministic, with real semantics.

The adapter does what every adapter does, against a fictional provider: it asks the
mock's "server" (:mod:`relay_mock._server`) for an answer body and parses it like a wire
answer, so an injected "malformed" fault (a body cut in half) fails on the same parse
path a real one would. Faults are injected here, where a real adapter meets the network;
batches are kept by :mod:`relay_mock._batch`. The plugin's README documents the models,
options and fault syntax.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from relay_core.plugin import (
    BatchCounts,
    BatchItem,
    BatchLimits,
    Capability,
    EmbeddingLimits,
    EmbeddingRequest,
    EmbeddingResponse,
    EndEvent,
    ErrorInfo,
    FinishReason,
    GenerationConfig,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    Part,
    Provider,
    ProviderBatch,
    ProviderError,
    ProviderSettings,
    ProviderUnavailable,
    RateLimitError,
    Request,
    Response,
    StreamAssembler,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Timeout,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
    estimate_text_tokens,
    parse_lines,
    provider_state_dir,
    structure,
    unstructure,
)
from relay_mock._batch import BatchRecord, DirectoryStore, MemoryStore, Progress, Store, progress
from relay_mock._embed import DEFAULT_DIMENSIONS, MAX_DIMENSIONS, vector
from relay_mock._script import Fault, Options, Script
from relay_mock._server import compose

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient

__all__ = ["MockProvider"]

# Stream pieces: each word with the whitespace before it, so the pieces join exactly.
_PIECE = re.compile(r"\s*\S+|\s+")
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class MockProvider(Provider):
    """An offline provider that answers like a real one. See the plugin's README."""

    name = "mock"
    capabilities = frozenset(
        {
            Capability.CHAT,
            Capability.STREAM,
            Capability.TOOLS,
            Capability.STRUCTURED_OUTPUT,
            Capability.VISION,
            Capability.DOCUMENTS,
            Capability.THINKING,
            Capability.BATCH,
            Capability.EMBEDDINGS,
            # Server-tool parts sent back are read like any other input (counted).
            Capability.SERVER_TOOLS,
        }
    )
    # Every setting is taken (the answers do not depend on sampling), so any catalog
    # runs against the mock.
    generation_settings = frozenset(a.name for a in attrs.fields(GenerationConfig))
    api_key_env = None

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        # The mock never touches the network; ``http`` is accepted for the core's sake.
        super().__init__(settings, http)
        self.options = Options.parse(settings)
        # Per instance, so a catalog can shrink them to exercise the core's splitting.
        self.batch_limits = BatchLimits(
            max_requests=self.options.batch_max_requests, max_bytes=self.options.batch_max_bytes
        )
        self.embedding_limits = EmbeddingLimits(
            max_inputs=self.options.embedding_max_inputs,
            max_tokens=self.options.embedding_max_tokens,
        )
        self._attempts: dict[str, int] = {}
        self._outcomes: dict[tuple[str, int], Response | ProviderError] = {}

    @contextmanager
    def _context(self, request: Request | EmbeddingRequest) -> Iterator[None]:
        """Stamp provider, model and custom_id on any error raised inside, in one place."""
        try:
            yield
        except ProviderError as error:
            error.provider = error.provider or self.settings.name
            error.model = error.model or request.model
            error.custom_id = error.custom_id or request.custom_id
            raise

    # -- chat and stream ------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        with self._context(request):
            script = Script.parse(request)
            fault = script.fault or self._model_fault(request)
            malformed = await self._inject(request, fault)
            if request.response_schema is not None or request.tools:
                # Values for a schema can take a while to build (see _schema.MAX_VALUES):
                # off the event loop, so a server the mock runs in answers meanwhile.
                return await asyncio.to_thread(self._answer, request, script, malformed=malformed)
            return self._answer(request, script, malformed=malformed)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        response = await self.chat(request)
        fault = Script.parse(request).fault or self._model_fault(request)
        # A drip fault spaces the stream's pieces: a stream that is long under way.
        gap = fault.seconds if fault is not None and fault.kind == "drip" else 0.0
        assembler = StreamAssembler(provider=self.settings.name)
        calls = 0
        for part in response.content:
            if isinstance(part, ThinkingPart):
                pieces = _PIECE.findall(part.text)
                for index, piece in enumerate(pieces, 1):
                    signature = part.signature if index == len(pieces) else None
                    yield assembler.feed(ThinkingDelta(piece, signature=signature))
            elif isinstance(part, TextPart):
                for index, piece in enumerate(_PIECE.findall(part.text)):
                    if gap and index:
                        await asyncio.sleep(gap)
                    yield assembler.feed(TextDelta(piece))
            elif isinstance(part, ToolCallPart):
                yield assembler.feed(ToolCallDelta(calls, id=part.id, name=part.name))
                arguments = json.dumps(part.arguments, ensure_ascii=False)
                for start in range(0, len(arguments), 16):
                    yield assembler.feed(
                        ToolCallDelta(calls, arguments=arguments[start : start + 16])
                    )
                calls += 1
        yield assembler.feed(UsageEvent(response.usage))
        yield EndEvent(
            assembler.response(
                model=response.model,
                finish_reason=response.finish_reason,
                id=response.id,
                raw=response.raw,
            )
        )

    # -- embeddings -----------------------------------------------------------------------

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        with self._context(request):
            limits = self.embedding_limits
            if limits.max_inputs is not None and len(request.inputs) > limits.max_inputs:
                # What a real provider answers past its limit; the core never sends it.
                raise InvalidRequestError(
                    f"{len(request.inputs)} inputs; the most one call takes is {limits.max_inputs}"
                )
            dimensions = request.dimensions or DEFAULT_DIMENSIONS
            if dimensions > MAX_DIMENSIONS:
                raise InvalidRequestError(
                    f"dimensions {dimensions} is above the mock's {MAX_DIMENSIONS}"
                )
            fault = _embedding_fault(request) or self._model_fault(request)
            if await self._inject(request, fault):
                raise MalformedResponse("the answer body arrived cut in half")
            return EmbeddingResponse(
                vectors=[vector(text, request.model, dimensions) for text in request.inputs],
                model=request.model,
                usage=Usage(input_tokens=sum(estimate_text_tokens(t) for t in request.inputs)),
                raw={"object": "list", "model": request.model, "count": len(request.inputs)},
            )

    def _model_fault(self, request: Request | EmbeddingRequest) -> Fault | None:
        spec = self.options.faults.get(request.model)
        where = f"providers.{self.settings.name}.options.faults[{request.model!r}]"
        return None if spec is None else Fault.parse(spec, where)

    async def _inject(self, request: Request | EmbeddingRequest, fault: Fault | None) -> bool:
        """Wait and fail as ``fault`` says; True when the body must come out malformed.

        Attempts are counted per request fingerprint, so ``times: 2`` fails the first two
        tries of one request and lets the hub's third retry through.
        """
        if fault is None:
            return False
        key = request.fingerprint()
        attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
        if fault.times is not None and attempt > fault.times:
            return False
        if fault.kind == "drip":  # slows a stream's pieces, not its start (see stream)
            return False
        wait = fault.latency + fault.seconds
        if wait > self.settings.timeout:
            await asyncio.sleep(self.settings.timeout)
            raise Timeout(f"no answer within the {self.settings.timeout:g}s timeout")
        if wait:
            await asyncio.sleep(wait)
        if fault.kind == "malformed":
            return True
        if fault.kind != "latency":
            raise _fault_error(fault, attempt)
        return False

    def _answer(self, request: Request, script: Script, *, malformed: bool) -> Response:
        body = json.dumps(compose(request, script), ensure_ascii=False)
        if malformed:
            # A connection cut mid-body: the most common malformed answer in the wild.
            body = body[: len(body) // 2]
        return _parse(body)

    # -- batches --------------------------------------------------------------------------

    def _now(self) -> float:
        return float(self.options.clock())

    def _store(self) -> Store:
        """Where batches live: ``state_dir`` when the catalog gives one; else, when a
        batch job calls, its workspace, so that ``relay batch status`` in the next process
        finds what ``relay batch submit`` created, as a real provider's batches are found
        again on its side; else this process's memory."""
        if self.options.state_dir:
            return DirectoryStore(self.options.state_dir)
        directory = provider_state_dir(self.settings.name)
        return MemoryStore() if directory is None else DirectoryStore(directory)

    def _record(self, batch_id: str) -> BatchRecord:
        record = self._store().get(batch_id)
        if record is None:
            raise NotFoundError(
                f"no batch {batch_id!r}", provider=self.settings.name, status_code=404
            )
        return record

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str] | None = None
    ) -> ProviderBatch:
        if not requests:
            raise InvalidRequestError(
                "a batch needs at least one request", provider=self.settings.name
            )
        seen: set[str] = set()
        for index, request in enumerate(requests):
            if not request.custom_id:
                raise InvalidRequestError(
                    f"request {index} of the batch has no custom_id; each needs a unique one",
                    provider=self.settings.name,
                )
            if request.custom_id in seen:
                raise InvalidRequestError(
                    f"custom_id {request.custom_id!r} appears more than once in the batch",
                    provider=self.settings.name,
                    custom_id=request.custom_id,
                )
            seen.add(request.custom_id)
        record = BatchRecord(
            id=f"mockbatch_{uuid.uuid4().hex[:24]}",
            seq=1 + max((r.seq for r in self._store().all()), default=0),
            created_at=self._now(),
            duration=self.options.batch_duration,
            expiry=self.options.batch_expiry,
            requests=requests,
            metadata=dict(metadata or {}),
        )
        self._store().put(record)
        return self._view(record, submitted=True)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        return self._view(self._record(batch_id))

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        record = self._record(batch_id)
        now = self._now()
        # Cancelling a finished batch changes nothing, as at the real batch APIs.
        if record.cancelled_at is None and not progress(record, now).done:
            record = record.cancelled(now)
            self._store().put(record)
        return self._view(record)

    async def list_batches(self) -> Sequence[ProviderBatch]:
        records = sorted(self._store().all(), key=lambda r: (r.created_at, r.seq), reverse=True)
        return [self._view(record) for record in records]

    def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        record = self._record(batch_id)
        where = progress(record, self._now())
        if not where.done:
            raise InvalidRequestError(
                f"batch {batch_id!r} is not finished (state {where.state}); "
                "results are available once batch_status reports it done",
                provider=self.settings.name,
            )
        # Read back like a provider's output file, so a malformed answer takes the same
        # path through the core's line parser as a real one.
        lines = (self._output_line(record, where, index) for index in range(len(record.requests)))
        return parse_lines(lines, _batch_item, source=f"output of batch {batch_id}")

    def _output_line(self, record: BatchRecord, where: Progress, index: int) -> str:
        request = record.requests[index]
        line: dict[str, Any] = {"custom_id": request.custom_id}
        if index >= where.finished:
            message = f"the batch was {where.state} before this request ran"
            line["error"] = unstructure(ErrorInfo(where.state, message, retryable=True))
            return json.dumps(line)
        outcome = self._outcome(record, index)
        if isinstance(outcome, Response):
            line["response"] = outcome.raw
        elif isinstance(outcome, MalformedResponse):
            # The answer's line was cut mid-body, the usual malformed output.
            line["response"] = compose(request, Script.parse(request))
            text = json.dumps(line, ensure_ascii=False)
            return text[: len(text) // 2]
        else:
            line["error"] = unstructure(ErrorInfo.from_exception(outcome))
        return json.dumps(line, ensure_ascii=False)

    def _outcome(self, record: BatchRecord, index: int) -> Response | ProviderError:
        """The result of one batch request: one attempt, no waiting, cached."""
        key = (record.id, index)
        if key not in self._outcomes:
            request = record.requests[index]
            try:
                with self._context(request):
                    script = Script.parse(request)
                    fault = script.fault or self._model_fault(request)
                    # A batch runs each request once: a fault fails it unless times is 0,
                    # and latency costs nothing when nobody waits for the answer.
                    if fault is not None and (fault.times == 0 or fault.kind == "latency"):
                        fault = None
                    if fault is not None and fault.kind != "malformed":
                        raise _fault_error(fault, 1)
                    response = self._answer(request, script, malformed=fault is not None)
                    self._outcomes[key] = attrs.evolve(response, custom_id=request.custom_id)
            except ProviderError as error:
                self._outcomes[key] = error
        return self._outcomes[key]

    def _view(self, record: BatchRecord, *, submitted: bool = False) -> ProviderBatch:
        """The batch as the provider reports it: a raw payload first, then the typed view."""
        total = len(record.requests)
        where = progress(record, self._now())
        state, finished, ended_at = where.state, where.finished, where.ended_at
        if submitted:
            # Accepting a batch is not running it: providers answer "validating" first.
            state, finished, ended_at = "validating", 0, None
        outcomes = [self._outcome(record, index) for index in range(finished)]
        completed = sum(isinstance(outcome, Response) for outcome in outcomes)
        failed = len(outcomes) - completed
        if state in ("cancelled", "expired"):
            failed += total - finished
        raw: dict[str, Any] = {
            "id": record.id,
            "object": "mock.batch",
            "status": state,
            "request_counts": {"total": total, "completed": completed, "failed": failed},
            "created_at": record.created_at,
            "ended_at": ended_at,
            "metadata": dict(record.metadata),
        }
        counts = raw["request_counts"]
        return ProviderBatch(
            id=raw["id"],
            provider=self.settings.name,
            state=state,
            counts=BatchCounts(counts["total"], counts["completed"], counts["failed"]),
            created_at=raw["created_at"],
            ended_at=raw["ended_at"],
            metadata=dict(raw["metadata"]),
            raw=raw,
        )


# ---------------------------------------------------------------------------- reading answers


def _embedding_fault(request: EmbeddingRequest) -> Fault | None:
    options = request.provider_kwargs.get("mock")
    if options is None:
        return None
    where = "provider_kwargs['mock']"
    if not isinstance(options, Mapping) or set(options) - {"fault"}:
        raise InvalidRequestError(f"{where} of an embedding call takes only 'fault'")
    spec = options.get("fault")
    return None if spec is None else Fault.parse(spec, f"{where}['fault']")


def _fault_error(fault: Fault, attempt: int) -> ProviderError:
    note = f"injected fault, attempt {attempt}"
    if fault.times is not None:
        note += f" of {fault.times} failing"
    if fault.kind == "rate_limit":
        return RateLimitError(
            f"rate limit exceeded ({note})", retry_after=fault.retry_after, status_code=429
        )
    if fault.kind == "server_error":
        return ProviderUnavailable(f"internal server error ({note})", status_code=500)
    return Timeout(f"no answer in time ({note})")


def _batch_item(line: Any) -> BatchItem:
    custom_id = line["custom_id"]
    if "error" in line:
        return BatchItem(custom_id, error=structure(line["error"], ErrorInfo), raw=line)
    response = attrs.evolve(_from_payload(line["response"]), custom_id=custom_id)
    return BatchItem(custom_id, response=response, raw=line)


def _parse(body: str) -> Response:
    """Read a mock answer body, as an adapter reads a provider's."""
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise MalformedResponse(f"answer is not JSON: {body[:60]!r}...", status_code=200) from error
    try:
        return _from_payload(payload)
    except KeyError as error:
        raise MalformedResponse(f"answer lacks the field {error}", status_code=200) from error
    except (TypeError, ValueError) as error:
        raise MalformedResponse(
            f"answer has an unexpected shape: {error}", status_code=200
        ) from error


def _from_payload(payload: Any) -> Response:
    def text(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {value!r}")
        return value

    content: list[Part] = []
    for block in payload["content"]:
        kind = block["type"]
        if kind == "text":
            content.append(TextPart(text(block["text"])))
        elif kind == "thinking":
            content.append(ThinkingPart(text(block["thinking"]), signature=block.get("signature")))
        elif kind == "tool_call":
            arguments = json.loads(text(block["arguments"]))
            if not isinstance(arguments, dict):
                raise TypeError(f"tool call arguments are not an object: {arguments!r}")
            content.append(ToolCallPart(text(block["id"]), text(block["name"]), arguments))
        else:
            raise ValueError(f"unknown content block type {kind!r}")
    stop_reason = payload["stop_reason"]
    if stop_reason not in _FINISH:
        raise ValueError(f"unknown stop_reason {stop_reason!r}")
    usage = payload["usage"]
    return Response(
        content=tuple(content),
        model=text(payload["model"]),
        id=text(payload["id"]),
        finish_reason=_FINISH[stop_reason],
        usage=Usage(
            input_tokens=int(usage["input_tokens"]),
            output_tokens=int(usage["output_tokens"]),
            reasoning_tokens=int(usage.get("reasoning_tokens", 0)),
        ),
        raw=payload,
    )
