"""Gemini on Vertex AI: relay-gemini's GenerateContent mapping at Vertex's URLs, with
Google Cloud credentials, and Vertex batch prediction jobs over Cloud Storage.

Nothing of the wire mapping is re-implemented: :class:`VertexProvider` subclasses
:class:`relay_gemini.wire.GeminiProvider` (payloads, answers, streams, blocked
prompts, stream errors) and changes where requests go and how they are signed. Batches
are Vertex's own API (``batchPredictionJobs``), written here; their lines are the same
GenerateContentRequests ``chat`` sends. The README lists every choice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import attrs

from relay_core.plugin import (
    AuthenticationError,
    BatchCounts,
    BatchItem,
    BatchLimits,
    BatchState,
    ConfigError,
    EmbeddingLimits,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorInfo,
    ErrorRule,
    InvalidRequestError,
    MalformedResponse,
    NotFoundError,
    ProviderBatch,
    ProviderError,
    ProviderSettings,
    QuotaExceeded,
    Request,
    Response,
    StreamEvent,
    closing_stream,
    error_info,
    jsonl,
    parse_lines,
)
from relay_gemini.batches import display_metadata, display_name
from relay_gemini.count import flat_count_payload
from relay_gemini.wire import GeminiProvider, http_status, timestamp_seconds
from relay_vertex import _embeddings
from relay_vertex._auth import GoogleAuth
from relay_vertex._client import Endpoints, Options, gcs_parts

if TYPE_CHECKING:
    from relay_core.plugin import HttpClient

__all__ = ["CUSTOM_ID_LABEL", "ERROR_RULES", "VertexProvider"]

# Vertex's own location default in google-genai: every current Gemini model is served
# there, and batch prediction runs there too. The catalog's location picks a region.
DEFAULT_LOCATION = "global"
# Where a batch line keeps its custom_id: a label of the GenerateContentRequest, which
# the output line echoes whole. Label values allow only [a-z0-9_-], 63 at most; other
# ids go base32-encoded over numbered labels (the README says why).
CUSTOM_ID_LABEL = "relay_custom_id"
_B32_LABEL = CUSTOM_ID_LABEL + "_b32_"
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{1,63}")
_MAX_ID_LABELS = 60  # of the 64 labels a request may carry, a few are left to the user
_STATES: dict[str, BatchState] = {
    "JOB_STATE_QUEUED": "validating",
    "JOB_STATE_PENDING": "validating",
    "JOB_STATE_RUNNING": "in_progress",
    "JOB_STATE_UPDATING": "in_progress",
    "JOB_STATE_PAUSED": "in_progress",
    # Some requests failed: their lines say why, and results report them one by one.
    "JOB_STATE_PARTIALLY_SUCCEEDED": "completed",
    "JOB_STATE_SUCCEEDED": "completed",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLING": "cancelling",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}
# Where Vertex differs from the core's classification by status: a 403 is a missing
# permission or billing, never the Gemini API's expired file; the rest is Gemini's
# wording (token limits, billing) since the models are the same.
ERROR_RULES: tuple[ErrorRule, ...] = (
    # "This API method requires billing to be enabled..." (reason BILLING_DISABLED)
    ErrorRule(QuotaExceeded, status=403, contains="BILLING_DISABLED"),
    ErrorRule(QuotaExceeded, status=403, contains="billing to be enabled"),
    # IAM denials end "(or it may not exist)": a role to grant, not a missing model.
    ErrorRule(AuthenticationError, status=403),
    *(rule for rule in GeminiProvider.error_rules if rule.status != 403),
)
_JOB_NAME = re.compile(r"projects/[^/]+/locations/[^/]+/batchPredictionJobs/[0-9]+")
_STORAGE = "https://storage.googleapis.com"


class VertexProvider(GeminiProvider):
    """Gemini models on Vertex AI (``vertex/gemini-2.5-flash``)."""

    name = "vertex"
    # Gemini's capabilities are the same on Vertex (GeminiProvider.capabilities).
    # No key variable: credentials are Google Cloud's (see relay_vertex._auth).
    # (The ignores: relay-gemini leaves these unannotated, so mypy narrows them to its
    # values' types; Provider declares the real ones, repeated here.)
    api_key_env: ClassVar[str | None] = None  # type: ignore[assignment]
    default_base_url: ClassVar[str | None] = None  # type: ignore[assignment]
    error_rules: ClassVar[Sequence[ErrorRule]] = ERROR_RULES  # type: ignore[assignment]
    # Vertex batch prediction for Gemini: 200,000 requests per job, a 1 GB input file.
    batch_limits = BatchLimits(max_requests=200_000, max_bytes=1_000_000_000)
    embedding_limits = EmbeddingLimits(
        max_inputs=_embeddings.MAX_INPUTS, max_tokens=_embeddings.MAX_TOKENS
    )

    def __init__(self, settings: ProviderSettings, http: HttpClient | None = None) -> None:
        self.options = Options.parse(settings, default_location=DEFAULT_LOCATION)
        if self.options.rest:
            raise ConfigError(
                f"providers.{settings.name}.options: unknown option(s) "
                f"{', '.join(sorted(self.options.rest))} (the vertex provider takes project, "
                "location and batch.gcs_uri)"
            )
        # relay-gemini refuses options it does not know: it gets none.
        super().__init__(attrs.evolve(settings, options={}), http)
        self.settings = settings
        self.auth = GoogleAuth(settings.name, settings.api_key, timeout=settings.timeout)
        self.endpoints = Endpoints(settings, self.options, self.auth)
        self.http.prepare = self.endpoints.preparer("publishers/google")

    def _headers(self) -> dict[str, str]:
        # The bearer token is added by the client's prepare on every call; never the api_key,
        # which holds credentials JSON here.
        return {}

    # -- calls ----------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        return await super().chat(self._gemini(request))

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        events = super().stream(self._gemini(request))
        async with closing_stream(events):
            async for event in events:
                yield event

    def embedding_limits_for(self, model: str) -> EmbeddingLimits:
        if _embeddings.one_instance_a_call(self._gemini_model(model)):
            return EmbeddingLimits(max_inputs=1, max_tokens=_embeddings.MAX_TOKENS)
        return self.embedding_limits

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        return await self._predict(attrs.evolve(request, model=self._gemini_model(request.model)))

    async def _predict(self, request: EmbeddingRequest) -> EmbeddingResponse:
        body = await self.http.json(
            "POST",
            f"/models/{quote(request.model, safe='-._~@')}:predict",
            json=_embeddings.payload(request),
            model=request.model,
        )
        return _embeddings.response(body, request, self.settings.name)

    async def count_tokens(self, request: Request) -> int:
        return await super().count_tokens(self._gemini(request))

    def count_payload(self, request: Request) -> dict[str, Any]:
        # Vertex's CountTokensRequest takes the request's fields at its top level.
        return flat_count_payload(self.payload(request))

    def _gemini(self, request: Request) -> Request:
        """The request with its model as Vertex's Gemini URLs take it."""
        model = self._gemini_model(request.model)
        return request if model == request.model else attrs.evolve(request, model=model)

    def _gemini_model(self, name: str) -> str:
        """``google/x`` as ``x``; another publisher's model is refused."""
        publisher, slash, model = name.partition("/")
        if not slash:
            return name
        if publisher == "google" and "/" not in model:
            return model
        raise InvalidRequestError(
            f"{self.settings.name}/{name}: the {self.settings.name} provider "
            "serves Google's Gemini models; models of other publishers are served by "
            f"Vertex's OpenAI-compatible endpoint: use vertex-openai/{name}",
            provider=self.settings.name,
            model=name,
        )

    # -- batches --------------------------------------------------------------------------

    def batch_line(self, request: Request) -> dict[str, Any]:
        """A line of the batch input file: ``{"request": GenerateContentRequest}``, the
        request's ``custom_id`` in its labels (the output echoes the request)."""
        request = self._gemini(request)
        payload = self.payload(request)
        labels = dict(payload.get("labels") or {})
        labels.update(_id_labels(request.custom_id or "", self.settings.name))
        payload["labels"] = labels
        return {"request": payload}

    async def submit_batch(
        self, requests: Sequence[Request], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        models = sorted({self._gemini(request).model for request in requests})
        if len(models) != 1:
            raise InvalidRequestError(
                "a Vertex batch prediction job runs one model; this batch has "
                + (", ".join(models) or "no requests"),
                provider=self.settings.name,
            )
        if self.options.gcs_uri is None:
            raise ConfigError(
                f"provider {self.settings.name!r}: Vertex batch jobs read and write Cloud "
                f"Storage; set providers.{self.settings.name}.options.batch.gcs_uri "
                "(gs://bucket/prefix)"
            )
        data = jsonl(self.batch_line(request) for request in requests)
        bucket, prefix = gcs_parts(self.options.gcs_uri)
        # Named by content: a resubmission after a crash overwrites the same object.
        folder = "/".join(
            p for p in (prefix, f"relay-{hashlib.sha256(data).hexdigest()[:20]}") if p
        )
        await self.http.json(
            "POST",
            f"{_STORAGE}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
            params={"uploadType": "media", "name": f"{folder}/input.jsonl"},
            content=data,
            headers={"content-type": "application/jsonl"},
            per_read_timeout=True,
        )
        job = await self.http.json(
            "POST",
            await self.endpoints.location_url("batchPredictionJobs"),
            json={
                "displayName": display_name(metadata),
                "model": f"publishers/google/models/{models[0]}",
                "inputConfig": {
                    "instancesFormat": "jsonl",
                    "gcsSource": {"uris": [f"gs://{bucket}/{folder}/input.jsonl"]},
                },
                "outputConfig": {
                    "predictionsFormat": "jsonl",
                    "gcsDestination": {"outputUriPrefix": f"gs://{bucket}/{folder}/output"},
                },
            },
            model=models[0],
        )
        return self._batch(job)

    async def batch_status(self, batch_id: str) -> ProviderBatch:
        return self._batch(await self.http.json("GET", await self._job_url(batch_id)))

    async def cancel_batch(self, batch_id: str) -> ProviderBatch:
        url = await self._job_url(batch_id)
        try:
            await self.http.json("POST", url + ":cancel")
        except InvalidRequestError:
            # A job that has just finished cannot be cancelled (FAILED_PRECONDITION).
            batch = await self.batch_status(batch_id)
            if batch.done:
                return batch
            raise
        batch = await self.batch_status(batch_id)
        if batch.done or batch.state == "cancelling":
            return batch
        # Cancelling is asynchronous: until Vertex shows it, the job is cancelling.
        return attrs.evolve(batch, state="cancelling")

    async def list_batches(self) -> Sequence[ProviderBatch]:
        batches: list[ProviderBatch] = []
        url = await self.endpoints.location_url("batchPredictionJobs")
        params: dict[str, str] = {"pageSize": "100"}
        for _ in range(2):  # the core looks for batches of the last moments only
            page = await self.http.json("GET", url, params=params)
            jobs = page.get("batchPredictionJobs") if isinstance(page, dict) else None
            batches.extend(self._batch(job) for job in jobs or [])
            if not isinstance(page, dict) or not page.get("nextPageToken"):
                break
            params = {**params, "pageToken": str(page["nextPageToken"])}
        return sorted(batches, key=lambda b: b.created_at or 0.0, reverse=True)

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        batch = await self.batch_status(batch_id)
        directory = (batch.raw.get("outputInfo") or {}).get("gcsOutputDirectory")
        if not isinstance(directory, str) or not directory.startswith("gs://"):
            if batch.done:
                return  # ended before writing anything: the core fails every request
            raise InvalidRequestError(
                f"batch {batch.id!r} is not finished (state {batch.state}); results are "
                "available once batch_status reports it done",
                provider=self.settings.name,
            )
        bucket, prefix = gcs_parts(directory)
        for name in await self._prediction_files(bucket, prefix):
            lines = self.http.stream_lines(
                "GET",
                f"{_STORAGE}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}",
                params={"alt": "media"},
            )
            async for item in parse_lines(
                lines, self._output_item, source=f"gs://{bucket}/{name}", id_field=CUSTOM_ID_LABEL
            ):
                yield item

    async def _prediction_files(self, bucket: str, prefix: str) -> list[str]:
        """The ``predictions*.jsonl`` objects of an output directory, in name order."""
        names: list[str] = []
        params = {"prefix": prefix + "/"}
        while True:
            page = await self.http.json(
                "GET", f"{_STORAGE}/storage/v1/b/{quote(bucket, safe='')}/o", params=params
            )
            for item in page.get("items") or [] if isinstance(page, dict) else []:
                name = item.get("name") if isinstance(item, dict) else None
                leaf = name.rsplit("/", 1)[-1] if isinstance(name, str) else ""
                if leaf.startswith("predictions") and leaf.endswith(".jsonl"):
                    names.append(str(name))
            token = page.get("nextPageToken") if isinstance(page, dict) else None
            if not token:
                return sorted(names)
            params = {**params, "pageToken": str(token)}

    async def _job_url(self, batch_id: str) -> str:
        """A job's URL from its full name, or from its number in this project."""
        if _JOB_NAME.fullmatch(batch_id):
            return self.endpoints.resource_url(batch_id)
        if batch_id.isdigit():
            return await self.endpoints.location_url(f"batchPredictionJobs/{batch_id}")
        raise NotFoundError(
            f"no batch {batch_id!r}: Vertex batch jobs are "
            "projects/<p>/locations/<l>/batchPredictionJobs/<number>",
            provider=self.settings.name,
        )

    def _batch(self, job: Any) -> ProviderBatch:
        """A BatchPredictionJob as Relay's view of it."""
        if not isinstance(job, dict) or not isinstance(job.get("name"), str):
            raise self._malformed(f"a batch prediction job has no name: {str(job)[:200]!r}")
        stats = job.get("completionStats") or {}
        # int64 fields: proto JSON writes them as strings, and leaves zeros out.
        succeeded = int(stats.get("successfulCount") or 0)
        failed = int(stats.get("failedCount") or 0)
        incomplete = int(stats.get("incompleteCount") or 0)
        state = _STATES.get(str(job.get("state")))
        if state is None:  # JOB_STATE_UNSPECIFIED, or a state newer than this adapter
            state = "in_progress"
        display = str(job.get("displayName") or "")
        return ProviderBatch(
            id=job["name"],
            provider=self.settings.name,
            state=state,
            counts=BatchCounts(succeeded + failed + incomplete, succeeded, failed),
            created_at=timestamp_seconds(job.get("createTime")),
            ended_at=timestamp_seconds(job.get("endTime")),
            metadata=display_metadata(display),
            raw=job,
        )

    def _output_item(self, line: Any) -> BatchItem:
        """One output line: the echoed ``request``, and ``response`` or an error in
        ``status`` (empty when the request succeeded)."""
        custom_id = _custom_id((line.get("request") or {}).get("labels") or {})
        status = line.get("status")
        if status or "response" not in line:
            return BatchItem(custom_id, error=self._line_error(status, custom_id), raw=line)
        model = str(line["response"].get("modelVersion") or "")
        try:
            response = self._parse(line["response"], model)
        except ProviderError as failed:  # a blocked prompt, an answer with no candidates
            failed.custom_id = custom_id
            return BatchItem(custom_id, error=ErrorInfo.from_exception(failed), raw=line)
        return BatchItem(custom_id, response=attrs.evolve(response, custom_id=custom_id), raw=line)

    def _line_error(self, status: Any, custom_id: str) -> ErrorInfo:
        """A failed line's ``status``: text such as ``Bad Request: {"error": {...}}``,
        classified by the google.rpc status inside when there is one."""
        text = status if isinstance(status, str) and status else "the request was not answered"
        start = text.find("{")
        payload: Any = None
        if start >= 0:
            try:
                payload = json.loads(text[start:])
            except ValueError:
                payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            return error_info(
                http_status(error),
                {"error": error},
                provider=self.settings.name,
                rules=self.error_rules,
                custom_id=custom_id,
            )
        # No status to go by: read as a server-side failure, which a rerun may fix.
        return error_info(
            500, text, provider=self.settings.name, rules=self.error_rules, custom_id=custom_id
        )


# ---------------------------------------------------------------------------- custom ids


def _id_labels(custom_id: str, provider: str) -> dict[str, str]:
    """The labels that carry ``custom_id``: itself when it is a valid label value, else
    its UTF-8 bytes in base32 (lowercase, unpadded) over numbered labels."""
    if not custom_id:
        raise InvalidRequestError(
            "every request of a Vertex batch needs a custom_id", provider=provider
        )
    if _LABEL_VALUE.fullmatch(custom_id):
        return {CUSTOM_ID_LABEL: custom_id}
    encoded = base64.b32encode(custom_id.encode()).decode().rstrip("=").lower()
    chunks = [encoded[i : i + 63] for i in range(0, len(encoded), 63)]
    if len(chunks) > _MAX_ID_LABELS:
        raise InvalidRequestError(
            f"custom_id of {len(custom_id)} characters is too long for a Vertex batch "
            "(it travels in request labels)",
            provider=provider,
        )
    return {f"{_B32_LABEL}{i}": chunk for i, chunk in enumerate(chunks)}


def _custom_id(labels: Mapping[str, Any]) -> str:
    """The custom_id :func:`_id_labels` put in ``labels``."""
    plain = labels.get(CUSTOM_ID_LABEL)
    if isinstance(plain, str) and plain:
        return plain
    chunks: list[str] = []
    while isinstance(labels.get(f"{_B32_LABEL}{len(chunks)}"), str):
        chunks.append(labels[f"{_B32_LABEL}{len(chunks)}"])
    if not chunks:
        raise MalformedResponse("the output line's request carries no relay custom_id label")
    encoded = "".join(chunks).upper()
    return base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode()
