"""The Bedrock adapter: Converse and ConverseStream for every chat model, InvokeModel
(and InvokeModelWithResponseStream) in Anthropic's Messages format through
relay-anthropic's own mapping, and batch inference jobs over S3.

Pooling, retries and the translation of failed answers are the core's; this module
chooses the endpoint, authenticates each request (``_auth``), decodes the binary event
stream (``_eventstream``) and maps bodies (``_converse``, relay-anthropic). The plugin's
README lists the options and every choice made.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import posixpath
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import attrs

from relay_anthropic.messages import (
    AnthropicProvider,
    StructuredOutput,
    parse_message,
    timestamp_seconds,
)
from relay_bedrock import _embeddings
from relay_bedrock._auth import (
    AwsCredentials,
    BearerAuth,
    BedrockAuth,
    SigV4,
    header_rules,
    stream_error,
)
from relay_bedrock._converse import (
    ConverseStream,
    converse_payload,
    converse_response,
    converse_usage,
)
from relay_bedrock._eventstream import EventStreamDecoder, EventStreamMessage
from relay_bedrock._options import BatchOptions, Options
from relay_core.plugin import (
    BatchCounts,
    BatchItem,
    BatchLimits,
    BatchState,
    Capability,
    ConfigError,
    ContextWindowExceeded,
    EmbeddingLimits,
    EmbeddingRequest,
    EmbeddingResponse,
    EndEvent,
    ErrorRule,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    Provider,
    ProviderBatch,
    ProviderError,
    ProviderSettings,
    ProviderUnavailable,
    Request,
    Response,
    Secret,
    SSEEvent,
    StreamEvent,
    TextDelta,
    UsageEvent,
    closing_stream,
    error_info,
    jsonl,
    parse_lines,
)

if TYPE_CHECKING:
    import httpx

    from relay_core.plugin import HttpClient

__all__ = ["BATCH_LIMITS", "BEDROCK_ANTHROPIC_VERSION", "BedrockProvider"]

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
TOKEN_ENV = "AWS_BEARER_TOKEN_BEDROCK"
# Bedrock's default quotas: 50,000 records per job, 1 GB per input file.
BATCH_LIMITS = BatchLimits(max_requests=50_000, max_bytes=1_000_000_000)
_STATES: dict[str, BatchState] = {
    "Submitted": "validating",
    "Validating": "validating",
    "Scheduled": "in_progress",
    "InProgress": "in_progress",
    "Stopping": "cancelling",
    "Stopped": "cancelled",
    "Completed": "completed",
    "PartiallyCompleted": "completed",
    "Failed": "failed",
    "Expired": "expired",
}
# States whose job may have written an output file.
_WITH_OUTPUT = ("Completed", "PartiallyCompleted", "Stopped", "Expired")
_JOB_NAME_DROPPED = re.compile(r"[^A-Za-z0-9+.-]")
_TOKEN_PREFIX = "relay-"
_LIST_LIMIT = 100
_LIST_PAGES = 2


class BedrockProvider(Provider):
    """AWS Bedrock. See the plugin's README for options, authentication and mappings."""

    name = "bedrock"
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
        }
    )
    # No key is required: without one, requests are signed with AWS credentials.
    # Converse's inferenceConfig; a seed is left out (best effort), top_k and the rest
    # are each model's own (provider_kwargs additionalModelRequestFields).
    generation_settings = frozenset({"temperature", "top_p", "max_tokens", "stop"})
    api_key_env = None
    # cachePoint blocks in Converse, cache_control on Claude's InvokeModel route.
    prompt_caching = "breakpoints"
    # The endpoint depends on the region: built per call (``base_url`` overrides it).
    default_base_url = None
    # For answers that name no error type (a proxy's) and for errors whose type leaves
    # the class to the message (ValidationException); the type table is in ``_auth``.
    error_rules = (
        *header_rules(),
        ErrorRule(ContextWindowExceeded, status=400, contains="input is too long"),
        ErrorRule(ContextWindowExceeded, status=400, contains="too many input tokens"),
        ErrorRule(ContextWindowExceeded, status=400, contains="context window"),
        ErrorRule(ProviderUnavailable, status=424),
        # An unknown model id (or one not offered in this region) is a 400
        # ValidationException, with or without its header: NotFoundError, as a 404
        # would be, so that a fallback group moves on to its next member.
        ErrorRule(NotFoundError, status=400, contains="provided model identifier is invalid"),
    )
    batch_limits = BATCH_LIMITS
    # Cohere Embed's 96 texts a call. Titan takes one text a call: the adapter sends a
    # split's texts one by one (a limit of 1 here would make Cohere Embed send one too).
    embedding_limits = EmbeddingLimits(max_inputs=_embeddings.MAX_INPUTS)

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        super().__init__(settings, http)

        def fail(message: str, path: Sequence[str | int]) -> Exception:
            where = ".".join(str(step) for step in path)
            return ConfigError(f"providers.{settings.name}.options.{where}: {message}")

        self.options = Options.parse(settings.options, fail)
        self._token = settings.api_key
        explicit = "credentials" in settings.options
        if self._token is None and not explicit and os.environ.get(TOKEN_ENV):
            self._token = Secret(os.environ[TOKEN_ENV], source=f"$env.{TOKEN_ENV}")
        self._aws = AwsCredentials(self.options.profile, provider=settings.name)
        self._region = (
            self.options.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
        )
        self._anthropic = _InvokeAnthropic(self)

    # -- calls ----------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        if self.options.api == "invoke":
            return await self._anthropic.chat(request)
        payload, structured = converse_payload(
            request,
            default_max_tokens=self.options.default_max_tokens,
            provider=self.settings.name,
        )
        body = await self.http.json(
            "POST",
            await self._runtime_url(request.model, "converse"),
            json=payload,
            auth=await self._auth("bedrock"),
            model=request.model,
        )
        return self._parse(body, structured, request.model)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        if self.options.api == "invoke":
            invoked = self._anthropic.stream(request)
            async with closing_stream(invoked):
                async for event in invoked:
                    yield event
            return
        payload, structured = converse_payload(
            request,
            default_max_tokens=self.options.default_max_tokens,
            provider=self.settings.name,
        )
        state = ConverseStream(structured)
        messages = self._events(
            await self._runtime_url(request.model, "converse-stream"), payload, request.model
        )
        async with contextlib.aclosing(messages):
            async for message in messages:
                data = self._event_data(message, request.model)
                try:
                    events = state.event(message.name, data)
                except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
                    raise self._malformed(error) from error
                for event in events:
                    yield event
                if message.name == "metadata" and isinstance(data.get("usage"), dict):
                    yield UsageEvent(converse_usage(data["usage"]))
        if not state.stopped:
            # The body just stopped: a cut connection, not a short answer.
            raise MalformedResponse(
                "ConverseStream ended before its messageStop event", provider=self.settings.name
            )
        response = self._parse(state.answer(), structured, request.model)
        if structured is not None and response.text:
            # Held back until complete: only checked JSON leaves the adapter.
            yield TextDelta(response.text)
        yield EndEvent(response)

    def embedding_limits_for(self, model: str) -> EmbeddingLimits:
        if "amazon.titan-embed-text" in model:
            return EmbeddingLimits(max_inputs=1)  # InvokeModel takes one Titan text
        return self.embedding_limits

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        if _embeddings.family(request.model, self.settings.name) == "cohere":
            answer = await self._invoke_embedding(_embeddings.cohere_payload(request), request)
            return _embeddings.cohere_response(
                self._json(answer, request.model), answer.headers, request, self.settings.name
            )
        # The core sends Titan one text a call (embedding_limits_for); a request built
        # by hand with more is answered text by text all the same.
        answers = [
            _embeddings.titan_response(
                self._json(
                    await self._invoke_embedding(_embeddings.titan_payload(request, text), request),
                    request.model,
                ),
                request,
                self.settings.name,
            )
            for text in request.inputs
        ]
        return EmbeddingResponse(
            vectors=[answer.vectors[0] for answer in answers],
            model=request.model,
            usage=sum((answer.usage for answer in answers[1:]), answers[0].usage),
            raw=answers[-1].raw,
        )

    async def _invoke_embedding(
        self, payload: Mapping[str, Any], request: EmbeddingRequest
    ) -> httpx.Response:
        return await self.http.request(
            "POST",
            await self._runtime_url(request.model, "invoke"),
            json=payload,
            auth=await self._auth("bedrock"),
            model=request.model,
        )

    def _json(self, answer: httpx.Response, model: str) -> Any:
        try:
            return answer.json()
        except ValueError as error:
            raise MalformedResponse(
                f"answer is not JSON: {answer.text[:200]!r}",
                provider=self.settings.name,
                model=model,
            ) from error

    # -- batches --------------------------------------------------------------------------

    def batch_line(self, request: Request) -> Mapping[str, Any]:
        if "anthropic." not in request.model:
            raise InvalidRequestError(
                f"Bedrock batch jobs are sent in Anthropic's Messages format, and "
                f"{request.model!r} is not an Anthropic model: run it with mode='engine'",
                provider=self.settings.name,
                custom_id=request.custom_id,
            )
        if not request.custom_id:
            raise InvalidRequestError("a batch request needs a custom_id")
        return {"recordId": request.custom_id, "modelInput": self._anthropic.payload(request)[0]}

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        options = self._batch_options()
        if len(requests) < options.min_records:
            raise InvalidRequestError(
                f"a Bedrock batch inference job takes at least {options.min_records} records "
                f"and this one has {len(requests)}: add requests, or run it with "
                "mode='engine'",
                provider=self.settings.name,
            )
        models = sorted({request.model for request in requests})
        if len(models) != 1:
            raise InvalidRequestError(
                f"a Bedrock batch job runs one model, not {', '.join(models)}",
                provider=self.settings.name,
            )
        tag = (
            metadata.get("relay_tag")
            or hashlib.sha256("".join(r.custom_id or "" for r in requests).encode()).hexdigest()[
                :16
            ]
        )
        name = _job_name(tag)
        folder = posixpath.join(options.prefix, name)
        input_key = posixpath.join(folder, "input.jsonl")
        await self._s3(
            "PUT",
            options.bucket,
            input_key,
            content=jsonl(self.batch_line(r) for r in requests),
            headers={"content-type": "application/jsonl"},
        )
        body: dict[str, Any] = {
            "jobName": name,
            "roleArn": options.role_arn,
            "modelId": models[0],
            # Idempotent: a retried create with this token makes no second job. It also
            # carries the tag, which the job's listing reports back.
            "clientRequestToken": _token(tag),
            "inputDataConfig": {
                "s3InputDataConfig": {
                    "s3Uri": f"s3://{options.bucket}/{input_key}",
                    "s3InputFormat": "JSONL",
                }
            },
            "outputDataConfig": {
                "s3OutputDataConfig": {"s3Uri": f"s3://{options.bucket}/{folder}/output/"}
            },
        }
        if options.timeout_hours is not None:
            body["timeoutDurationInHours"] = options.timeout_hours
        created = await self._control("POST", "/model-invocation-job", json=body)
        try:
            job_arn = str(created["jobArn"])
        except (KeyError, TypeError) as error:
            raise self._malformed(error) from error
        return ProviderBatch(
            id=job_arn,
            provider=self.settings.name,
            state="validating",
            counts=BatchCounts(total=len(requests)),
            created_at=time.time(),
            metadata=_metadata(body["clientRequestToken"]),
            raw=created,
        )

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        return self._batch(await self._job(batch_id))

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        job = await self._job(batch_id)
        try:
            status = job["status"]
            output = job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"]
            source = job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
            job_id = job["jobArn"].rsplit("/", 1)[-1]
        except (KeyError, TypeError, AttributeError) as error:
            raise self._malformed(error) from error
        if status not in _WITH_OUTPUT:
            raise InvalidRequestError(
                f"batch job {batch_id!r} has no results yet (status {status!r})",
                provider=self.settings.name,
            )
        # Bedrock writes <output>/<job id>/<input file name>.out, one line per record.
        bucket, prefix = _split_s3(output)
        key = posixpath.join(prefix, job_id, posixpath.basename(source) + ".out")
        lines = self.http.stream_lines(
            "GET", await self._s3_url(bucket, key), auth=await self._auth("s3")
        )
        async for item in parse_lines(lines, self._batch_item, source=f"results of {batch_id}"):
            yield item

    def finish_batch_response(self, request: Request, response: Response) -> Response:
        return self._anthropic.finish_batch_response(request, response)

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        try:
            await self._control("POST", f"{_job_path(batch_id)}/stop", parse=False)
        except ProviderError as error:
            # Stopping a job that has ended is refused (ValidationException); an ended
            # job is returned unchanged.
            if error.status_code not in (400, 409):
                raise
            batch = await self.batch_status(batch_id)
            if not batch.done:
                raise
            return batch
        return await self.batch_status(batch_id)

    async def list_batches(self) -> Sequence[ProviderBatch]:
        batches: list[ProviderBatch] = []
        params: dict[str, Any] = {
            "maxResults": _LIST_LIMIT,
            "sortBy": "CreationTime",
            "sortOrder": "Descending",
        }
        for _ in range(_LIST_PAGES):
            page = await self._control("GET", "/model-invocation-jobs", params=params)
            batches += [self._batch(job) for job in page.get("invocationJobSummaries") or ()]
            if not page.get("nextToken"):
                break
            params = {**params, "nextToken": page["nextToken"]}
        return batches

    # -- requests -------------------------------------------------------------------------

    async def _region_name(self) -> str:
        if self._region is None:
            # The profile's region: botocore reads the shared config file.
            self._region = await asyncio.to_thread(self._aws.region)
        if not self._region:
            raise ConfigError(
                f"provider {self.settings.name!r} needs an AWS region: set "
                f"providers.{self.settings.name}.options.region, AWS_REGION, or a region "
                "in the AWS profile"
            )
        return self._region

    async def _runtime_url(self, model_id: str, action: str) -> str:
        base = self.settings.base_url or (
            f"https://bedrock-runtime.{await self._region_name()}.amazonaws.com"
        )
        # Model ids may be ARNs (inference profiles, provisioned models): one path segment.
        return f"{base.rstrip('/')}/model/{quote(model_id, safe='')}/{action}"

    async def _auth(self, service: str) -> BedrockAuth:
        """The request's authentication: the API key for Bedrock when there is one; a
        SigV4 signature otherwise, and always for S3, which takes no Bedrock key."""
        if self._token is not None and service != "s3":
            return BearerAuth(self._token)
        credentials = await self._aws.frozen()
        return SigV4(credentials, service=service, region=await self._region_name())

    async def _control(self, method: str, path: str, *, parse: bool = True, **kwargs: Any) -> Any:
        """A call of the control plane (batch jobs)."""
        url = f"https://bedrock.{await self._region_name()}.amazonaws.com{path}"
        auth = await self._auth("bedrock")
        if not parse:
            return await self.http.request(method, url, auth=auth, **kwargs)
        return await self.http.json(method, url, auth=auth, **kwargs)

    async def _s3_url(self, bucket: str, key: str) -> str:
        region = await self._region_name()
        # Virtual-hosted style, except for names with dots, which TLS cannot match.
        if "." in bucket:
            return f"https://s3.{region}.amazonaws.com/{bucket}/{quote(key)}"
        return f"https://{bucket}.s3.{region}.amazonaws.com/{quote(key)}"

    async def _s3(self, method: str, bucket: str, key: str, **kwargs: Any) -> Any:
        return await self.http.request(
            method,
            await self._s3_url(bucket, key),
            auth=await self._auth("s3"),
            per_read_timeout=True,
            **kwargs,
        )

    async def _events(
        self, url: str, payload: Mapping[str, Any], model: str
    ) -> AsyncGenerator[EventStreamMessage, None]:
        """The messages of a binary event stream answering ``payload``."""
        decoder = EventStreamDecoder()
        chunks = self.http.stream_bytes(
            "POST",
            url,
            json=payload,
            headers={"accept": "application/vnd.amazon.eventstream"},
            auth=await self._auth("bedrock"),
            model=model,
        )
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                try:
                    decoded = decoder.feed(chunk)
                except MalformedResponse as error:
                    error.provider = self.settings.name
                    raise
                for message in decoded:
                    yield message
        if decoder.pending:
            raise MalformedResponse(
                "the event stream ended inside a message", provider=self.settings.name
            )

    def _event_data(self, message: EventStreamMessage, model: str) -> dict[str, Any]:
        """An event's JSON payload; an exception message raises its typed error."""
        try:
            data = json.loads(message.payload or b"{}")
        except ValueError as error:
            raise self._malformed(error) from error
        if message.kind == "exception":
            raise stream_error(
                message.name, data, rules=self.error_rules, provider=self.settings.name, model=model
            )
        if message.kind == "error":
            text = str(message.headers.get(":error-message", ""))
            raise stream_error(
                message.name,
                {"message": text},
                rules=self.error_rules,
                provider=self.settings.name,
                model=model,
            )
        if not isinstance(data, dict):
            raise self._malformed(TypeError(f"event payload is {type(data).__name__}"))
        return data

    async def _invoke(self, payload: Mapping[str, Any], model: str) -> Any:
        return await self.http.json(
            "POST",
            await self._runtime_url(model, "invoke"),
            json=payload,
            auth=await self._auth("bedrock"),
            model=model,
        )

    async def _invoke_stream(
        self, payload: Mapping[str, Any], model: str
    ) -> AsyncIterator[SSEEvent]:
        """InvokeModelWithResponseStream's chunks, each an Anthropic stream event, as the
        server-sent events relay-anthropic reads."""
        url = await self._runtime_url(model, "invoke-with-response-stream")
        messages = self._events(url, payload, model)
        async with contextlib.aclosing(messages):
            async for message in messages:
                data = self._event_data(message, model)
                if message.name != "chunk":
                    continue
                try:
                    text = base64.b64decode(data["bytes"]).decode("utf-8")
                except (KeyError, TypeError, ValueError) as error:
                    raise self._malformed(error) from error
                yield SSEEvent(text)

    # -- answers --------------------------------------------------------------------------

    def _parse(self, body: Any, structured: StructuredOutput | None, model: str) -> Response:
        try:
            return converse_response(body, structured, model=model)
        except MalformedResponse as error:
            error.provider = error.provider or self.settings.name
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            raise self._malformed(error) from error

    def _malformed(self, error: Exception) -> MalformedResponse:
        return MalformedResponse(
            f"answer has an unexpected shape: {type(error).__name__}: {error}",
            provider=self.settings.name,
        )

    def _batch_options(self) -> BatchOptions:
        if self.options.batch is None:
            raise ConfigError(
                f"Bedrock batch jobs need providers.{self.settings.name}.options.batch "
                "with s3_uri (where input and output files go) and role_arn (the role "
                "Bedrock runs the job as)"
            )
        return self.options.batch

    async def _job(self, batch_id: str) -> Any:
        return await self._control("GET", _job_path(batch_id))

    def _batch(self, job: Any) -> ProviderBatch:
        try:
            total = int(job.get("totalRecordCount") or 0)
            return ProviderBatch(
                id=job["jobArn"],
                provider=self.settings.name,
                state=_STATES[job["status"]],
                counts=BatchCounts(
                    total,
                    int(job.get("successRecordCount") or 0),
                    int(job.get("errorRecordCount") or 0),
                ),
                created_at=timestamp_seconds(job.get("submitTime")),
                ended_at=timestamp_seconds(job.get("endTime")),
                metadata=_metadata(job.get("clientRequestToken")),
                raw=job,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise self._malformed(error) from error

    def _batch_item(self, line: Any) -> BatchItem:
        custom_id = line["recordId"]
        if "modelOutput" in line:
            response = parse_message(line["modelOutput"], None, provider=self.settings.name)
            return BatchItem(custom_id, attrs.evolve(response, custom_id=custom_id), raw=line)
        error = line["error"]
        status = int(error.get("errorCode") or 500)
        body = {"message": str(error.get("errorMessage") or "")}
        info = error_info(
            status, body, provider=self.settings.name, rules=self.error_rules, custom_id=custom_id
        )
        return BatchItem(custom_id, error=info, raw=line)


class _InvokeAnthropic(AnthropicProvider):
    """relay-anthropic's Messages mapping, sent through InvokeModel: the body carries
    ``anthropic_version`` instead of a header, and no ``model`` (it is in the URL) nor
    ``stream`` (streaming is another endpoint). Its ``self.http`` is a channel to the
    Bedrock adapter, so relay-anthropic's own chat and stream code runs unchanged."""

    def __init__(self, bedrock: BedrockProvider) -> None:
        settings = ProviderSettings(
            name=bedrock.settings.name,
            options={"default_max_tokens": bedrock.options.default_max_tokens},
        )
        super().__init__(settings, cast("HttpClient", _InvokeChannel(bedrock)))

    def payload(
        self, request: Request, *, stream: bool = False
    ) -> tuple[dict[str, Any], StructuredOutput | None]:
        payload, structured = super().payload(request)
        payload.pop("model", None)
        return {"anthropic_version": BEDROCK_ANTHROPIC_VERSION, **payload}, structured

    def _headers(self) -> dict[str, str]:
        return {}  # the channel authenticates


class _InvokeChannel:
    """What relay-anthropic's adapter calls as ``self.http`` (``json`` and
    ``stream_sse``, with the model id it passes), answered through InvokeModel."""

    def __init__(self, bedrock: BedrockProvider) -> None:
        self._bedrock = bedrock

    async def json(self, method: str, url: str, *, json: Any, model: str, **_: Any) -> Any:
        return await self._bedrock._invoke(json, model)

    async def stream_sse(
        self, method: str, url: str, *, json: Any, model: str, **_: Any
    ) -> AsyncIterator[SSEEvent]:
        events = self._bedrock._invoke_stream(json, model)
        async with closing_stream(events):
            async for event in events:
                yield event


def _job_path(batch_id: str) -> str:
    return f"/model-invocation-job/{quote(batch_id, safe='')}"


def _job_name(tag: str) -> str:
    """A job name Bedrock takes (letters, digits, ``+-.``, at most 63), from the tag."""
    return ("relay-" + _JOB_NAME_DROPPED.sub("-", tag))[:63].rstrip("-.+")


def _token(tag: str) -> str:
    """The idempotency token: the tag in hex, as tokens take only letters, digits and
    hyphens; a tag too long for the token's 256 characters goes as its hash (and is then
    not reported back)."""
    token = _TOKEN_PREFIX + tag.encode().hex()
    if len(token) <= 256:
        return token
    return "relayh-" + hashlib.sha256(tag.encode()).hexdigest()


def _metadata(token: Any) -> dict[str, str]:
    if not isinstance(token, str) or not token.startswith(_TOKEN_PREFIX):
        return {}
    try:
        tag = bytes.fromhex(token[len(_TOKEN_PREFIX) :]).decode()
    except ValueError:
        return {}
    # The core's tags are "<job id>.<chunk>.<random>".
    return {"relay_tag": tag, "relay_job": tag.rsplit(".", 2)[0]}


def _split_s3(uri: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if match is None:
        raise MalformedResponse(f"not an S3 URI: {uri!r}")
    return match.group(1), match.group(2).strip("/")
