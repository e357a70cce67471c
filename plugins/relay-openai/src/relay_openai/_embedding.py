"""The adapter's embedding calls: ``POST /embeddings``, and embedding requests in
OpenAI's Batch API.

A batch of embeddings is a batch like any other (the same upload, ``POST /batches``,
statuses and output files), over the ``/v1/embeddings`` endpoint: each input line's
``body`` is what ``POST /embeddings`` takes, and each output line's ``response.body``
what it answers (``{"object": "list", "data": [{"index", "embedding"}], "model",
"usage": {"prompt_tokens", "total_tokens"}}``). Both are :mod:`relay_openai.embeddings`'
mapping, the one live calls use; :class:`OpenAIEmbeddings` gives the adapter ``embed`` and the
two batch methods the core calls.

A subclass speaking another provider's batch API (relay-openai-compat's) does not get
embedding batches by inheritance: it declares ``embedding_batches = True`` itself once
its provider takes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from relay_core.plugin import (
    BatchItem,
    Capability,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorRule,
    InvalidRequestError,
    ProviderBatch,
    Request,
    Response,
    jsonl,
)
from relay_openai import embeddings
from relay_openai._batch import output_item

__all__ = [
    "EMBEDDINGS_ENDPOINT",
    "OpenAIEmbeddings",
    "embedding_item",
]

EMBEDDINGS_ENDPOINT = "/v1/embeddings"


def embedding_item(line: Any, *, provider: str, rules: Sequence[ErrorRule]) -> BatchItem:
    """One output- or error-file line of an embeddings batch: the vectors of a 200
    answer in ``embedding``, any other answer classified with ``rules``."""
    answered: list[EmbeddingResponse] = []

    def parse(body: dict[str, Any], _: Request) -> Response:
        answered.append(embeddings.parse(body, None, provider=provider))
        return Response(content="")

    item = output_item(line, parse, provider=provider, rules=rules)
    if answered:
        return BatchItem(item.custom_id, embedding=answered[0], raw=item.raw)
    return item


class OpenAIEmbeddings:
    """Embedding calls and batches, mixed into :class:`OpenAIProvider` (which declares
    ``embedding_batches = True``) and inherited by the adapters built on it, which
    override :meth:`embedding_payload` where their endpoint differs (Azure's)."""

    embedding_batches: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass opts in by declaring it; inheriting OpenAI's answer would send
        # embeddings to a batch API that may not take them.
        if "embedding_batches" not in cls.__dict__:
            cls.embedding_batches = False

    def embedding_payload(self, request: EmbeddingRequest) -> tuple[str, dict[str, Any]]:
        """The endpoint path and the JSON body this adapter sends for ``request``."""
        adapter: Any = self  # the OpenAIProvider this is mixed into
        # Relay's own key (the chat API choice) means nothing here and never goes out.
        _, extra = adapter._own_kwargs(request)
        encoding = adapter.embedding_encoding
        return "/embeddings", embeddings.payload(request, encoding_format=encoding, extra=extra)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        adapter: Any = self
        if not adapter.supports(Capability.EMBEDDINGS):
            raise adapter.unsupported(Capability.EMBEDDINGS)
        path, body = self.embedding_payload(request)
        answer = await adapter.http.json(
            "POST", path, json=body, headers=adapter._headers(), model=request.model
        )
        return embeddings.parse(answer, request, provider=adapter.settings.name)

    def embedding_batch_line(self, request: EmbeddingRequest) -> Mapping[str, Any]:
        adapter: Any = self  # the OpenAIProvider this is mixed into
        _, body = adapter.embedding_payload(request)  # the body a live call sends
        return {
            "custom_id": request.custom_id,
            "method": "POST",
            "url": EMBEDDINGS_ENDPOINT,
            "body": body,
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
