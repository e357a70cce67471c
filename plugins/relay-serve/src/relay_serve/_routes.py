"""The OpenAI routes beside chat: ``POST /v1/embeddings``, ``POST /v1/responses`` and
``GET /v1/models/{id}``.

Each model route passes the same admission as chat (``_Server._intake``: request id,
content type, key and rate limit, bounded body), then its own wire mapping, the model
lookup, an upstream slot, and the server's metrics, logs and error shapes.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay_core.plugin import UnknownAlias
from relay_serve._allowed import visible_models
from relay_serve._app import (
    Exchange,
    _request_id,
    _Server,
    _unless_disconnected,
)
from relay_serve._embeddings_wire import embedding_list, parse_embeddings
from relay_serve._responses_object import response_object
from relay_serve._responses_stream import ResponsesFrames
from relay_serve._responses_wire import parse_responses
from relay_serve._streaming import event_stream
from relay_serve._wire import decode_body, model_object

if TYPE_CHECKING:
    from relay_core.plugin import EmbeddingResponse

__all__ = ["EMBEDDINGS", "RESPONSES", "embeddings", "model", "responses", "routes"]

EMBEDDINGS = "/v1/embeddings"
RESPONSES = "/v1/responses"


def routes(server: _Server) -> list[Route]:
    """The routes of this module, bound to ``server``."""
    return [
        Route(EMBEDDINGS, functools.partial(embeddings, server), methods=["POST"]),
        Route(RESPONSES, functools.partial(responses, server), methods=["POST"]),
        Route("/v1/models/{model:path}", functools.partial(model, server), methods=["GET"]),
    ]


async def embeddings(server: _Server, request: Request) -> Response:
    return await server.exchange(
        request, EMBEDDINGS, "embd-", functools.partial(_embeddings, server)
    )


async def _embeddings(server: _Server, exchange: Exchange) -> Response:
    call = parse_embeddings(decode_body(exchange.body), request_id=exchange.request_id)
    exchange.label = server._label(call.model)
    call = attrs.evolve(call, request=await server._ready(exchange, call.request))

    async def answer() -> EmbeddingResponse:
        async with server.gate.slot():
            return await server.hub.aembed(call.request)

    vectors = await _unless_disconnected(exchange.request.receive, answer())
    exchange.answered(server.spending, vectors)
    body = embedding_list(vectors, model=call.model, base64=call.base64)
    return JSONResponse(body, headers={"x-request-id": exchange.request_id})


async def responses(server: _Server, request: Request) -> Response:
    return await server.exchange(request, RESPONSES, "resp_", functools.partial(_responses, server))


async def _responses(server: _Server, exchange: Exchange) -> Response:
    call = parse_responses(decode_body(exchange.body), request_id=exchange.request_id)
    exchange.label = server._label(call.model)
    call = attrs.evolve(call, request=await server._ready(exchange, call.request))
    created = int(time.time())
    receive = exchange.request.receive
    if call.stream:
        head, events = await _unless_disconnected(receive, server._open(call.request))
        frames = ResponsesFrames(call, exchange.request_id, created)
        return event_stream(server, exchange, frames, head, events, call.request)
    answer = await _unless_disconnected(receive, server._answer(call.request))
    exchange.answered(server.spending, answer)
    body = response_object(call, id=exchange.request_id, created_at=created, answer=answer)
    return JSONResponse(body, headers={"x-request-id": exchange.request_id})


async def model(server: _Server, request: Request) -> Response:
    """One model object, for any name ``GET /v1/models`` lists."""
    name = request.path_params["model"]
    try:
        key = await server._admit(request, "models")
        if name not in visible_models(key, server.hub.catalog):
            # Only what the list shows: a provider/model name would let a client probe
            # which upstream models exist through this server.
            raise UnknownAlias(name)
    except Exception as error:
        return server._error(error, _request_id(request) or "", "", None)
    return JSONResponse(model_object(name, created=int(time.time())))
