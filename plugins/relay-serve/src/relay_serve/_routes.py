"""The OpenAI routes beside chat: ``POST /v1/embeddings``, ``POST /v1/responses`` and
``GET /v1/models/{id}``.

Each model route passes the same admission as chat (``_Server._intake``: request id,
content type, key and rate limit, bounded body), then its own wire mapping, the model
lookup, an upstream slot, and the server's metrics, logs and error shapes.
"""

from __future__ import annotations

import functools
import time
import uuid
from typing import TYPE_CHECKING

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay_core.plugin import UnknownAlias
from relay_serve._allowed import visible_models
from relay_serve._app import (
    _CLIENT_GONE,
    _Disconnected,
    _request_id,
    _Server,
    _unless_disconnected,
)
from relay_serve._embeddings_wire import embedding_list, parse_embeddings
from relay_serve._quota import Admission
from relay_serve._responses_object import response_object
from relay_serve._responses_stream import ResponsesFrames
from relay_serve._responses_wire import parse_responses
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
    started = time.perf_counter()
    given = _request_id(request)
    request_id = given or "embd-" + uuid.uuid4().hex
    label = ""
    admission: Admission | None = None
    try:
        key, admission, raw = await server._intake(request, given, request_id)
        call = parse_embeddings(decode_body(raw), request_id=request_id)
        label = server._label(call.model)
        call = attrs.evolve(call, request=await server._ready(key, call.request))

        async def answer() -> EmbeddingResponse:
            async with server.gate.slot():
                return await server.hub.aembed(call.request)

        vectors = await _unless_disconnected(request.receive, answer())
        server.spending.answered(request_id, label, key, vectors)
        admission.answered(vectors.usage)
    except _Disconnected:
        server.metrics.cancelled(EMBEDDINGS)
        server._done(request_id, label, _CLIENT_GONE, started, EMBEDDINGS)
        return Response(status_code=_CLIENT_GONE)
    except Exception as error:
        return server._error(error, request_id, label, started, EMBEDDINGS)
    finally:
        if admission is not None:
            await admission.close()
    body = embedding_list(vectors, model=call.model, base64=call.base64)
    server._done(request_id, label, 200, started, EMBEDDINGS)
    return JSONResponse(body, headers={"x-request-id": request_id})


async def responses(server: _Server, request: Request) -> Response:
    started = time.perf_counter()
    given = _request_id(request)
    request_id = given or "resp_" + uuid.uuid4().hex
    label = ""
    admission: Admission | None = None
    try:
        key, admission, raw = await server._intake(request, given, request_id)
        call = parse_responses(decode_body(raw), request_id=request_id)
        label = server._label(call.model)
        call = attrs.evolve(call, request=await server._ready(key, call.request))
        created = int(time.time())
        if call.stream:
            head, events = await _unless_disconnected(request.receive, server._open(call.request))
            frames = ResponsesFrames(call, request_id, created)
            stream = server._event_stream(
                frames,
                head,
                events,
                request_id,
                label=label,
                started=started,
                key=key,
                asked=call.request,
                admission=admission,
                route=RESPONSES,
            )
            admission = None  # the stream closes it when it ends
            return stream
        answer = await _unless_disconnected(request.receive, server._answer(call.request))
        server.spending.answered(request_id, label, key, answer)
        admission.answered(answer.usage)
    except _Disconnected:
        server.metrics.cancelled(RESPONSES)
        server._done(request_id, label, _CLIENT_GONE, started, RESPONSES)
        return Response(status_code=_CLIENT_GONE)
    except Exception as error:
        return server._error(error, request_id, label, started, RESPONSES)
    finally:
        if admission is not None:
            await admission.close()
    body = response_object(call, id=request_id, created_at=created, answer=answer)
    server._done(request_id, label, 200, started, RESPONSES)
    return JSONResponse(body, headers={"x-request-id": request_id})


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
