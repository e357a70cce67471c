"""Embedding requests in OpenAI's Batch API.

A batch of embeddings is a batch like any other (the same upload, ``POST /batches``,
statuses and output files), over the ``/v1/embeddings`` endpoint: each input line's
``body`` is what ``POST /embeddings`` takes, and each output line's ``response.body``
what it answers (``{"object": "list", "data": [{"index", "embedding"}], "model",
"usage": {"prompt_tokens", "total_tokens"}}``). The wire mapping is the pure functions
below; :class:`EmbeddingBatches` gives the adapter the two batch methods the core calls.

A subclass speaking another provider's batch API (relay-openai-compat's) does not get
embedding batches by inheritance: it declares ``embedding_batches = True`` itself once
its provider takes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from relay_core.plugin import (
    BatchItem,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorRule,
    InvalidRequestError,
    MalformedResponse,
    ProviderBatch,
    Request,
    Response,
    Usage,
    jsonl,
)
from relay_openai._batch import output_item

__all__ = [
    "EMBEDDINGS_ENDPOINT",
    "EmbeddingBatches",
    "embedding_body",
    "embedding_item",
    "parse_embeddings",
]

EMBEDDINGS_ENDPOINT = "/v1/embeddings"

# The key of provider_kwargs that holds this adapter's own settings, never sent.
_OWN_KWARGS = "openai"


def embedding_body(request: EmbeddingRequest) -> dict[str, Any]:
    """The JSON body of ``POST /embeddings`` for ``request``: its provider_kwargs (but
    the adapter's own key) under the fields Relay sets. ``input_type`` has no OpenAI
    field and is left out."""
    body = {k: v for k, v in request.provider_kwargs.items() if k != _OWN_KWARGS}
    body.update(model=request.model, input=list(request.inputs), encoding_format="float")
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    return body


def parse_embeddings(body: Mapping[str, Any], *, provider: str) -> EmbeddingResponse:
    """An embeddings answer as Relay's, vectors in the inputs' order (by ``index``)."""
    try:
        data = sorted(body["data"], key=lambda entry: int(entry["index"]))
        vectors = [[float(x) for x in entry["embedding"]] for entry in data]
        usage = body.get("usage") or {}
        tokens = int(usage.get("prompt_tokens") or 0)
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedResponse(
            f"an embeddings answer without the expected fields ({error!r})", provider=provider
        ) from error
    return EmbeddingResponse(
        vectors=vectors,
        model=str(body.get("model") or ""),
        usage=Usage(input_tokens=tokens),
        raw=dict(body),
    )


def embedding_item(line: Any, *, provider: str, rules: Sequence[ErrorRule]) -> BatchItem:
    """One output- or error-file line of an embeddings batch: the vectors of a 200
    answer in ``embedding``, any other answer classified with ``rules``."""
    answered: list[EmbeddingResponse] = []

    def parse(body: dict[str, Any], _: Request) -> Response:
        answered.append(parse_embeddings(body, provider=provider))
        return Response(content="")

    item = output_item(line, parse, provider=provider, rules=rules)
    if answered:
        return BatchItem(item.custom_id, embedding=answered[0], raw=item.raw)
    return item


class EmbeddingBatches:
    """The batch methods for embedding requests, mixed into :class:`OpenAIProvider`,
    which declares ``embedding_batches = True``."""

    embedding_batches: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass opts in by declaring it; inheriting OpenAI's answer would send
        # embeddings to a batch API that may not take them.
        if "embedding_batches" not in cls.__dict__:
            cls.embedding_batches = False

    def embedding_batch_line(self, request: EmbeddingRequest) -> Mapping[str, Any]:
        return {
            "custom_id": request.custom_id,
            "method": "POST",
            "url": EMBEDDINGS_ENDPOINT,
            "body": embedding_body(request),
        }

    async def submit_embedding_batch(
        self, requests: Sequence[EmbeddingRequest], *, metadata: Mapping[str, str]
    ) -> ProviderBatch:
        adapter: Any = self  # the OpenAIProvider this is mixed into
        if not self.embedding_batches:
            raise InvalidRequestError(
                "this provider's batch API does not take embedding requests",
                provider=adapter.settings.name,
            )
        adapter._require_batch()
        data = jsonl(self.embedding_batch_line(request) for request in requests)
        uploaded = await adapter._upload_batch_input(data, len(requests), metadata)
        raw = await adapter._create_batch(str(uploaded["id"]), EMBEDDINGS_ENDPOINT, metadata)
        view: ProviderBatch = await adapter._batch_view(raw)
        return view
