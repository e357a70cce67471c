"""Helpers for testing Relay plugins and applications, and the provider conformance suite.

Importing this module does not import pytest; the conformance suite does when it runs.

::

    from relay_core.testing import hub_for, recorded_waits

    def test_my_adapter_retries():
        with hub_for("models:\\n  fast: acme/x\\n", my_plugin) as hub, recorded_waits() as waits:
            hub.chat("fast", "hi")
        assert waits == [2.0]          # the Retry-After the fake server sent
"""

from __future__ import annotations

import collections.abc
import contextlib
import gc
import importlib
import inspect
import json
import os
import sys
import threading
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typing_extensions

from relay_core import http
from relay_core.config import parse_catalog
from relay_core.errors import (
    AuthenticationError,
    CredentialError,
    RateLimitError,
    RelayError,
    UnsupportedCapability,
)
from relay_core.hookspecs import hookimpl
from relay_core.hub import Hub
from relay_core.plugins import PluginRegistry
from relay_core.providers import Capability, Provider, ProviderSettings
from relay_core.secrets import MASK, is_credential_name, mask
from relay_core.types import (
    AuditEvent,
    DocumentPart,
    EndEvent,
    GenerationConfig,
    ImagePart,
    Message,
    Request,
    Response,
    ResponseSchema,
    TextDelta,
    Tool,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CONFORMANCE_KEY",
    "CONFORMANCE_TEXT",
    "MISSING",
    "OPENAI_QUICKSTART",
    "PNG_PIXEL",
    "SECRET_HEADERS",
    "WEATHER_TOOL",
    "AuditRecorder",
    "FakeServer",
    "KeyedPlugin",
    "KeyedProvider",
    "ProviderConformance",
    "answer_text",
    "assert_as_intended",
    "assert_stream_equals_chat",
    "cassette_interactions",
    "cassette_player",
    "cassette_problems",
    "header_differences",
    "hub_for",
    "hub_maker",
    "json_answer",
    "json_differences",
    "json_server",
    "memory_keyring",
    "model_problems",
    "plugin_fixtures",
    "recorded_waits",
    "secret_shown",
    "sse_answer",
    "sse_payloads",
    "typed_dict_problems",
    "unexplained_differences",
    "unread_keys",
    "wire_request",
]

OPENAI_QUICKSTART: dict[str, list[dict[str, Any]]] = {
    "pirate": [
        {"role": "developer", "content": "Talk like a pirate."},
        {"role": "user", "content": "Are semicolons optional in JavaScript?"},
    ],
    "classic": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Who won the world series in 2020?"},
        {"role": "assistant", "content": "The Los Angeles Dodgers won the World Series in 2020."},
        {"role": "user", "content": "Where was it played?"},
    ],
}
"""The ``messages`` lists of the OpenAI SDK's quickstart, the first thing a user coming
from it tries: each must go through ``hub.chat(alias, messages=...)`` unchanged."""


def hub_for(
    catalog_text: str = "", *plugins: object, path: str = "relay.yaml", **kwargs: Any
) -> Hub:
    """A hub over catalog text that loads no entry points, with exactly ``plugins``
    registered in code, so a test sees only what it names. ``path`` appears in errors;
    ``kwargs`` go to :class:`Hub` (``transport=httpx.MockTransport(...)``)."""
    hub = Hub(parse_catalog(catalog_text, path=path), autoload=False, **kwargs)
    for plugin in plugins:
        hub.plugins.register(plugin, name=getattr(plugin, "__name__", None))
    return hub


class KeyedProvider(Provider):
    """``keyed``: answers every call with the API key it was built with, so a test sees
    which key a call used (keys given in code, a credential resolver, a rotation)."""

    name = "keyed"
    capabilities = frozenset({Capability.CHAT})
    api_key_env = "KEYED_TEST_API_KEY"

    async def chat(self, request: Request) -> Response:
        if self.settings.api_key is None:
            raise AssertionError("the keyed provider was built without a key")
        return Response(content=self.settings.api_key.reveal())


class AuditRecorder:
    """A plugin that keeps every audit event the hub emits, in order: register it with
    the hub (``hub_for(..., AuditRecorder())``, ``registry.register(recorder)``)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    @hookimpl
    def relay_audit(self, event: AuditEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        """The events' kinds (``call.start``, ``call.end``...), in order."""
        return [event.kind for event in self.events]


class KeyedPlugin:
    """Registers :class:`KeyedProvider`: ``hub_for(catalog, KeyedPlugin(), my_plugin)``."""

    @hookimpl
    def relay_register_providers(self, register: Callable[..., None]) -> None:
        register("keyed", KeyedProvider)


@contextmanager
def json_server(answer: Callable[[str, str, Mapping[str, str]], tuple[int, Any]]) -> Iterator[str]:
    """A JSON API on 127.0.0.1 for a test of a client library that takes no httpx
    transport (a secret manager's SDK): ``answer(method, path, headers)`` (header names
    in lower case) gives each request's status and JSON body. Yields the base URL (``http://127.0.0.1:PORT``);
    the server stops when the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, body = answer(self.command, self.path, headers)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass  # a test's output is its assertions, not an access log

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def hub_maker(*plugins: object, catalog: str = "") -> Iterator[Callable[..., Hub]]:
    """Within the block, ``make(handler=None, catalog=...)`` builds a :func:`hub_for`
    hub with ``plugins`` registered, answering every HTTP request through ``handler``
    (an ``httpx.MockTransport``) or, without one, through the real transport that a
    cassette replaces; every hub made is closed when the block ends. The body of a
    provider plugin's ``make_hub`` fixture::

        @pytest.fixture
        def make_hub():
            with hub_maker(relay_acme) as make:
                yield make
    """
    import httpx

    made: list[Hub] = []
    default = catalog

    def make(
        handler: Callable[[httpx.Request], httpx.Response] | None = None, catalog: str = default
    ) -> Hub:
        transport = None if handler is None else httpx.MockTransport(handler)
        hub = hub_for(catalog, *plugins, transport=transport)
        made.append(hub)
        return hub

    try:
        yield make
    finally:
        for hub in made:
            hub.close()


def plugin_fixtures(
    plugin: object,
    *,
    cassettes: str | Path,
    keys: dict[str, str] | None = None,
    catalog: str = "",
) -> tuple[Any, Any, Any, Any]:
    """The fixtures every provider plugin's ``conftest.py`` declares, for its own data:
    ``make_hub`` (:func:`hub_maker` with ``plugin`` and ``catalog``), ``cassette``
    (:func:`cassette_player` over ``cassettes``), ``waits`` (:func:`recorded_waits`),
    and an autouse fixture setting ``keys`` (environment variables) when replaying, as
    a recording takes the shell's real ones::

        # conftest.py
        make_hub, cassette, waits, _keys = plugin_fixtures(
            relay_acme, cassettes=CASSETTES, keys={"ACME_API_KEY": KEY}
        )

    Assign them to those names: pytest finds a conftest's fixtures by name.
    """
    import pytest

    @pytest.fixture(name="make_hub")
    def make_hub() -> Iterator[Callable[..., Hub]]:
        """A hub with the plugin registered in code, answering through ``handler`` (or
        through the real transport, which cassettes replace); closed after the test."""
        with hub_maker(plugin, catalog=catalog) as make:
            yield make

    @pytest.fixture(name="cassette")
    def cassette() -> Callable[[str], AbstractContextManager[Any]]:
        """``with cassette("name"):`` replays ``name.yaml`` of the plugin's cassettes."""
        return cassette_player(cassettes)

    @pytest.fixture(name="waits")
    def waits() -> Iterator[list[float]]:
        """The hub's retry waits, recorded instead of slept through."""
        with recorded_waits() as recorded:
            yield recorded

    @pytest.fixture(name="_keys", autouse=True)
    def set_keys(monkeypatch: pytest.MonkeyPatch) -> None:
        # Replaying needs a key only to build the adapter; recording uses the real one.
        if os.environ.get("RELAY_RECORD", "none") == "none":
            for name, value in (keys or {}).items():
                monkeypatch.setenv(name, value)

    return make_hub, cassette, waits, set_keys


@contextmanager
def recorded_waits() -> Iterator[list[float]]:
    """Within the block, retry backoff waits are recorded in the yielded list instead of
    slept through: retries stay fast and their waits can be asserted."""
    recorded: list[float] = []
    original = http._sleep

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    http._sleep = record
    try:
        yield recorded
    finally:
        http._sleep = original


@contextmanager
def memory_keyring() -> Iterator[dict[tuple[str, str], str]]:
    """Within the block, the ``keyring`` library stores passwords in the yielded dict,
    keyed by ``(service, user)``, instead of the system keyring: tests of
    ``keyring:SERVICE/USER`` references and ``relay auth`` never touch the real one."""
    import keyring
    import keyring.backend
    import keyring.errors

    passwords: dict[tuple[str, str], str] = {}

    class MemoryKeyring(keyring.backend.KeyringBackend):
        priority = 1

        def get_password(self, service: str, username: str) -> str | None:
            return passwords.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            passwords[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            if (service, username) not in passwords:
                raise keyring.errors.PasswordDeleteError(f"no password for {service}/{username}")
            del passwords[(service, username)]

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())  # type: ignore[no-untyped-call]
    try:
        yield passwords
    finally:
        keyring.set_keyring(previous)


# ---------------------------------------------------------------------------- fake servers


def json_answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    """An HTTP answer with a JSON body (``retry_after="3"`` style headers by keyword,
    underscores read as dashes)."""
    import httpx

    return httpx.Response(
        status, json=body, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


def sse_answer(events: list[Any], *, named: bool = False, done: bool = False) -> httpx.Response:
    """A ``text/event-stream`` answer: one event per item (dicts as JSON, strings as
    they are). ``named`` adds ``event: <item["type"]>`` lines, as Anthropic and the
    Responses API send; ``done`` ends with ``data: [DONE]``, as OpenAI-style APIs do."""
    import httpx

    text = ""
    for event in events:
        if named and isinstance(event, dict):
            text += f"event: {event['type']}\n"
        text += f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n"
    if done:
        text += "data: [DONE]\n\n"
    return httpx.Response(200, content=text.encode(), headers={"content-type": "text/event-stream"})


class FakeServer:
    """A scripted provider for adapter tests: pass it (or :attr:`transport`) to
    ``httpx.MockTransport``. It records every request and answers with the next of its
    answers, the last one repeating. ::

        server = FakeServer(json_answer({...}))
        with hub_for(catalog, my_plugin, transport=server.transport) as hub:
            hub.chat("fast", "hi")
        assert server.payload["model"] == "acme-1"
    """

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def reply(self, body: Any, status: int = 200, **headers: str) -> None:
        """Queue a JSON answer."""
        self.answers.append(json_answer(body, status, **headers))

    def reply_sse(self, events: list[Any], *, named: bool = False, done: bool = False) -> None:
        """Queue a stream of server-sent events (see :func:`sse_answer`)."""
        self.answers.append(sse_answer(events, named=named, done=done))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"FakeServer has no answer for {request.method} {request.url}")
        index = min(len(self.requests), len(self.answers)) - 1
        return self.answers[index]

    @property
    def transport(self) -> httpx.MockTransport:
        """A new ``httpx.MockTransport`` answering through this server (for
        :func:`hub_for`'s ``transport``)."""
        import httpx

        return httpx.MockTransport(self)

    @property
    def payload(self) -> Any:
        """The JSON body of the last request."""
        return json.loads(self.requests[-1].content)

    @property
    def payloads(self) -> list[Any]:
        """The JSON bodies of every request, in the order they came."""
        return [json.loads(r.content) for r in self.requests]


# ---------------------------------------------------------------------------- cassettes

# Headers that carry credentials or identify an account: never written to a cassette.
SECRET_HEADERS = (
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
    "x-goog-user-project",
    "openai-organization",
    "openai-project",
    "anthropic-organization-id",
    "cookie",
    "set-cookie",
)


def cassette_player(directory: str | Path) -> Callable[[str], AbstractContextManager[Any]]:
    """``use("name")`` replays ``directory/name.yaml`` with vcrpy (a test dependency).

    The record mode is ``$RELAY_RECORD``, by default ``none``: a request the cassette
    does not hold fails instead of reaching the network. With ``RELAY_RECORD=once`` and a
    real key in the environment it records, with :data:`SECRET_HEADERS` filtered out
    first, every query parameter of a credential's name (``key``, ``api_key``,
    ``access_token``, ``X-Amz-Signature``... see :func:`relay_core.plugin.is_credential_name`)
    removed, and any other query or header value equal to a secret of the environment
    (a variable named like ``*_API_KEY``, ``*_TOKEN``, ``*_SECRET*``) masked. Requests
    match on method, URL and body; JSON bodies compare as JSON (key order and spacing do
    not matter), others byte for byte.
    """
    import vcr  # type: ignore[import-untyped]

    recorder = vcr.VCR(
        cassette_library_dir=str(directory),
        record_mode=os.environ.get("RELAY_RECORD", "none"),
        filter_headers=list(SECRET_HEADERS),
        match_on=["method", "scheme", "host", "port", "path", "query", "same_body"],
        decode_compressed_response=True,
        before_record_request=_without_secret_parameters(_environment_secrets()),
        before_record_response=_without_keys,
    )
    recorder.register_matcher("same_body", _same_body)

    def use(name: str) -> AbstractContextManager[Any]:
        return recorder.use_cassette(f"{name}.yaml", allow_playback_repeats=False)  # type: ignore[no-any-return]

    return use


def _environment_secrets() -> frozenset[str]:
    """The values of the environment's credential variables (``OPENAI_API_KEY``,
    ``AWS_SECRET_ACCESS_KEY``, ``GITHUB_TOKEN``...): the keys a recording is made with."""
    return frozenset(
        value
        for name, value in os.environ.items()
        if is_credential_name(name) and len(value.strip()) >= 6
    )


def _without_secret_parameters(known: frozenset[str]) -> Callable[[Any], Any]:
    """A vcrpy request filter: credential query parameters removed (as vcrpy's own
    ``filter_query_parameters`` does, so cassettes recorded before still match), and any
    other query or header value holding a known secret masked. vcrpy runs it on a copy
    of each request, when recording and when matching a replay alike."""
    from vcr.filters import replace_query_parameters  # type: ignore[import-untyped]

    def hide(value: str) -> str:
        for secret in known:
            value = value.replace(secret, MASK)
        return mask(value)

    def filtered(request: Any) -> Any:
        replacements: list[tuple[str, str | None]] = []
        for name, value in request.query:
            if is_credential_name(name):
                replacements.append((name, None))
            elif hide(value) != value:
                replacements.append((name, hide(value)))
        if replacements:
            request = replace_query_parameters(request, replacements)
        for name, value in list(request.headers.items()):
            if isinstance(value, str) and hide(value) != value:
                request.headers[name] = hide(value)
        return request

    return filtered


def _without_keys(response: dict[str, Any]) -> dict[str, Any]:
    """A recorded answer with the keys it echoes masked, in its body and its headers."""
    body = response.get("body") or {}
    raw = body.get("string")
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="surrogateescape")
        body["string"] = mask(text).encode("utf-8", errors="surrogateescape")
    elif isinstance(raw, str):
        body["string"] = mask(raw)
    headers = response.get("headers") or {}
    for name, values in headers.items():
        if name.lower() == "content-length" and raw is not None:
            # The body may be shorter now; a replay must not wait for the missing bytes.
            size = body["string"] if isinstance(body["string"], bytes) else body["string"].encode()
            headers[name] = [str(len(size))]
        else:
            headers[name] = [mask(value) for value in values]
    return response


def _same_body(sent: Any, recorded: Any) -> None:
    def value(body: Any) -> Any:
        if not body:
            return None
        raw = body if isinstance(body, bytes) else str(body).encode()
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    assert value(sent.body) == value(recorded.body), "request body differs from the cassette's"


# ---------------------------------------------------------------------------- SDK oracles
#
# The official SDKs' types say what a provider accepts and answers. These checkers hold
# Relay's request bodies and the cassettes' answers to them; they import no SDK, so any
# plugin's tests may use them with whichever SDK they install.


def typed_dict_problems(value: Any, annotation: Any, path: str = "$") -> list[str]:
    """What in ``value`` (a JSON body) the request type ``annotation`` does not allow:
    unknown keys, missing required keys, wrong scalar types and literals, each as
    ``"<path>: <problem>"``. ``annotation`` is an SDK's ``TypedDict`` (keys renamed with
    ``Annotated[..., PropertyInfo(alias=...)]`` read under their wire name), or any
    ``Union``/``Literal``/``Iterable``/``Dict``/scalar built from them. Unlike a
    pydantic ``TypeAdapter``, it checks the items of an ``Iterable`` too."""
    origin = typing_extensions.get_origin(annotation)
    args = typing_extensions.get_args(annotation)
    if origin is typing_extensions.Annotated:
        return typed_dict_problems(value, args[0], path)
    if origin in (typing_extensions.Required, typing_extensions.NotRequired):
        return typed_dict_problems(value, args[0], path)
    if annotation in (Any, object) or isinstance(annotation, typing.TypeVar):
        return []
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        options = [typed_dict_problems(value, option, path) for option in args]
        # The closest option explains the mismatch best.
        return [] if [] in options else min(options, key=len)
    if origin is typing_extensions.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if typing_extensions.is_typeddict(annotation):
        return _typed_dict_object_problems(value, annotation, path)
    if annotation is type(None):
        return [] if value is None else [f"{path}: {value!r} is not null"]
    if annotation is str or annotation is bytes:
        return [] if isinstance(value, str) else [f"{path}: {value!r} is not a string"]
    if annotation is bool:
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]
    if annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not an integer"]
    if annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a number"]
    container = origin if isinstance(origin, type) else None
    if container is not None and issubclass(container, collections.abc.Mapping):
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        item = args[1] if len(args) == 2 else Any
        return [p for k, v in value.items() for p in typed_dict_problems(v, item, f"{path}.{k}")]
    if container is not None and issubclass(container, collections.abc.Iterable):
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not an array"]
        item = args[0] if args else Any
        return [
            p for i, v in enumerate(value) for p in typed_dict_problems(v, item, f"{path}[{i}]")
        ]
    if isinstance(annotation, type) and typing_extensions.get_origin(annotation) is None:
        # SequenceNotStr and the like are Protocol classes wrapping a list.
        if getattr(annotation, "_is_protocol", False) and isinstance(value, list):
            return []
        if isinstance(value, annotation):
            return []
    return [f"{path}: {value!r} does not match {annotation!r}"]


def _typed_dict_object_problems(value: Any, annotation: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: {value!r} is not an object"]
    hints = typing_extensions.get_type_hints(annotation, include_extras=True)
    wire: dict[str, tuple[str, Any]] = {}
    annotated: Any = typing_extensions.Annotated
    marked: Any = typing_extensions.Required
    unmarked: Any = typing_extensions.NotRequired
    for name, hint in hints.items():
        alias, layer = name, hint
        # The alias sits in Annotated's metadata, itself maybe inside Required[...].
        while typing_extensions.get_origin(layer) in (annotated, marked, unmarked):
            args = typing_extensions.get_args(layer)
            if typing_extensions.get_origin(layer) is annotated:
                alias = next((m.alias for m in args[1:] if getattr(m, "alias", None)), alias)
            layer = args[0]
        wire[alias] = (name, hint)
    problems = [f"{path}: unknown key {key!r}" for key in value if key not in wire]
    # Read from the hints, not __required_keys__: under postponed annotations (as the
    # SDKs write them) the class cannot see Required[...] and leaves that wrong.
    totals = _totality(annotation)

    def required(name: str, hint: Any) -> bool:
        while typing_extensions.get_origin(hint) is annotated:
            hint = typing_extensions.get_args(hint)[0]
        origin = typing_extensions.get_origin(hint)
        return origin is marked or (totals.get(name, True) and origin is not unmarked)

    problems += [
        f"{path}: missing required key {key!r}"
        for key, (name, hint) in wire.items()
        if required(name, hint) and key not in value
    ]
    for key, item in value.items():
        if key in wire:
            problems += typed_dict_problems(item, wire[key][1], f"{path}.{key}")
    return problems


def _totality(annotation: Any) -> dict[str, bool]:
    """Each key of a TypedDict and the ``total`` of the class that declared it (a class's
    own ``__annotations__`` hold its bases' keys too)."""
    found: dict[str, bool] = {}
    for base in getattr(annotation, "__orig_bases__", ()):
        if typing_extensions.is_typeddict(base):
            found.update(_totality(base))
    total = bool(getattr(annotation, "__total__", True))
    for key in inspect.get_annotations(annotation):
        found.setdefault(key, total)
    return found


def model_problems(
    annotation: Any, data: Any, path: str = "$", *, from_json: bool = False
) -> list[str]:
    """What in ``data`` (a JSON answer or request body) the type ``annotation`` does not
    describe: pydantic's validation errors (a missing required field, a wrong type) and
    every key of ``data`` the type does not declare, at every depth, each as
    ``"<path>: <problem>"``. SDK models ignore or keep unknown keys instead of refusing
    them, so validation alone never reports a field Relay's cassettes invented.

    ``annotation`` is an SDK's pydantic model, a union of them (a stream event type: the
    member whose literal fields, ``type``..., ``data`` matches is the one checked), or
    any type pydantic validates (``list[Content]``). ``from_json`` validates ``data`` as
    JSON text, so bytes are read as the type's JSON form (base64). A field typed as a
    free mapping (``Dict[str, Any]``) is not walked into. ::

        assert model_problems(ChatCompletion, json.loads(text)) == []
    """
    # By name: pydantic is the SDKs' dependency and a test one, not the core's.
    pydantic = importlib.import_module("pydantic")
    annotation = _union_member(annotation, data)
    adapter = pydantic.TypeAdapter(annotation)
    try:
        if from_json:
            parsed = adapter.validate_json(json.dumps(data))
        else:
            parsed = adapter.validate_python(data)
    except pydantic.ValidationError as error:
        errors = error.errors()
        # In a union, a member whose literal (``type``...) the data does not match is not
        # the one meant: its errors would only bury the real one's.
        others = {e["loc"][:-1] for e in errors if e["type"] == "literal_error"}
        meant = [
            e
            for e in errors
            if not any(e["loc"][: len(o)] == o and _member_name(o) for o in others)
        ]
        return [
            f"{path}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in (meant or errors)
        ]
    return _unknown_fields(parsed, data, path)


def _member_name(loc: tuple[Any, ...]) -> bool:
    """Whether an error location ends at a union member (pydantic names it by its class)."""
    return bool(loc) and isinstance(loc[-1], str) and loc[-1][:1].isupper()


def _union_member(annotation: Any, data: Any) -> Any:
    """The one member of a union of models whose literal fields (``type``, ``object``...)
    ``data`` matches, so its errors are reported rather than every member's; else the
    annotation as it is."""
    union = annotation
    while typing_extensions.get_origin(union) is typing_extensions.Annotated:
        union = typing_extensions.get_args(union)[0]
    if typing_extensions.get_origin(union) is not typing.Union or not isinstance(data, dict):
        return annotation

    def matches(member: Any) -> bool:
        for name, field in getattr(member, "model_fields", {}).items():
            hint = field.annotation
            if typing_extensions.get_origin(hint) is typing_extensions.Literal:
                key = field.alias or name
                if key not in data or data[key] not in typing_extensions.get_args(hint):
                    return False
        return hasattr(member, "model_fields")

    found = [member for member in typing_extensions.get_args(union) if matches(member)]
    return found[0] if len(found) == 1 else annotation


def _unknown_fields(value: Any, raw: Any, path: str) -> list[str]:
    """The keys of ``raw`` that ``value`` (what pydantic made of it) does not declare, at
    every depth: read from each model's ``model_fields`` (names and aliases), so a key
    the model dropped (``extra="ignore"``) is found as well as one it kept as an extra."""
    if isinstance(value, (list, tuple)) and isinstance(raw, list):
        return [
            found
            for index, (item, raw_item) in enumerate(zip(value, raw, strict=False))
            for found in _unknown_fields(item, raw_item, f"{path}[{index}]")
        ]
    if not isinstance(raw, dict):
        return []
    if isinstance(value, dict):
        return [
            found
            for key, raw_item in raw.items()
            if key in value
            for found in _unknown_fields(value[key], raw_item, f"{path}.{key}")
        ]
    fields = getattr(type(value), "model_fields", None)
    if fields is None:
        return []
    names: dict[str, str] = {}
    for name, info in fields.items():
        names[name] = name
        for alias in (info.alias, info.validation_alias, info.serialization_alias):
            if isinstance(alias, str):
                names[alias] = name
    found = [f"{path}: unknown field {key!r}" for key in raw if key not in names]
    for key, raw_item in raw.items():
        if key in names:
            found += _unknown_fields(getattr(value, names[key], None), raw_item, f"{path}.{key}")
    return found


def wire_request(request: Any, headers: Sequence[str]) -> dict[str, Any]:
    """What of an HTTP request (``httpx``'s, or an SDK's own client's) a provider reads:
    the method, the path, the query, the ``headers`` named (lower case; absent ones
    left out) and the body, as JSON when it is JSON. For comparing what an official
    SDK sends with what Relay sends for the same call."""
    content = bytes(request.content)
    try:
        body: Any = json.loads(content) if content else None
    except ValueError:
        body = content
    return {
        "method": request.method,
        "path": request.url.path,
        "query": dict(request.url.params),
        "headers": {name: request.headers[name] for name in headers if name in request.headers},
        "body": body,
    }


MISSING = "<missing>"

# What an SDK oracle sends through the SDK and through Relay alike: one tool, one image.
WEATHER_TOOL = Tool(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PNG_PIXEL = bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4"
    "890000000d4944415478da6364f8cf500f00038601805a347d6b000000004945"
    "4e44ae426082"
)


def json_differences(left: Any, right: Any, path: str = "$") -> dict[str, tuple[Any, Any]]:
    """Where two JSON values differ: ``{path: (left's, right's)}``, a key one side lacks
    shown as :data:`MISSING` there (a JSON ``null`` stays ``None``), lists compared item
    by item, ``1`` and ``1.0`` different. Used to compare the body an official SDK sends
    with Relay's for the same call."""
    if isinstance(left, dict) and isinstance(right, dict):
        found: dict[str, tuple[Any, Any]] = {}
        for key in [*left, *(k for k in right if k not in left)]:
            found.update(
                json_differences(left.get(key, MISSING), right.get(key, MISSING), f"{path}.{key}")
            )
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        found = {}
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            found.update(json_differences(a, b, f"{path}[{index}]"))
        return found
    return {} if left == right and type(left) is type(right) else {path: (left, right)}


def header_differences(left: Any, right: Any, names: Sequence[str]) -> dict[str, tuple[Any, Any]]:
    """Where two requests' headers ``names`` differ, as :func:`json_differences` says it:
    ``{"header:<name>": (left's, right's)}``, an absent header :data:`MISSING`. ``left``
    and ``right`` are header mappings (an SDK's may hold bytes: read as text)."""

    def value(headers: Any, name: str) -> Any:
        found = headers.get(name, MISSING)
        return found.decode() if isinstance(found, bytes) else found

    return {
        f"header:{name}": (value(left, name), value(right, name))
        for name in names
        if value(left, name) != value(right, name)
    }


def unexplained_differences(
    case: str,
    differences: dict[str, tuple[Any, Any]],
    intended: dict[tuple[str, str], tuple[Any, Any, str]],
) -> dict[str, tuple[Any, Any]]:
    """The ``differences`` (from :func:`json_differences`, :func:`header_differences`)
    that ``intended`` does not explain for ``case``. ``intended`` maps ``(case, path)``,
    or ``("*", path)`` for every case, to ``(left's value, right's value, the reason)``;
    an entry explains a difference only with exactly the values found, the case's own
    entry before the one for every case."""
    unexplained = {}
    for path, pair in differences.items():
        entry = intended.get((case, path), intended.get(("*", path)))
        if entry is None or (entry[0], entry[1]) != pair:
            unexplained[path] = pair
    return unexplained


def assert_as_intended(
    case: str,
    sdk: Any,
    relay: Any,
    intended: dict[tuple[str, str], tuple[Any, Any, str]],
) -> None:
    """Fail unless every difference between the request an SDK sent and Relay's for
    ``case`` (:func:`wire_request` views) is one ``intended`` explains (see
    :func:`unexplained_differences`), and every entry ``intended`` has for ``case`` still
    occurs: a listed difference that went away is stale, and must go too."""
    differences = json_differences(sdk, relay)
    unexpected = unexplained_differences(case, differences, intended)
    assert not unexpected, f"{case}: Relay sends differently from the SDK: {unexpected}"
    stale = [path for (listed, path) in intended if listed == case and path not in differences]
    assert not stale, f"{case}: listed as intended differences, but the same now: {stale}"


def secret_shown(secret: str, error: BaseException, *texts: str) -> list[str]:
    """Where ``secret`` (an API key, a token) shows: in ``error`` as a user, a log or a
    pickle sees it (``str``, ``repr``, its ``message`` and ``provider_message``, its
    ``args`` as JSON) or in ``texts`` (captured logs and output, URLs sent...). A test
    asserts the answer is ``[]``; a non-empty one names each place."""
    places = {
        "str(error)": str(error),
        "repr(error)": repr(error),
        "error.args": json.dumps(error.args, default=str),
    }
    for name in ("message", "provider_message"):
        value = getattr(error, name, None)
        if value is not None:
            places[f"error.{name}"] = str(value)
    places.update((f"texts[{number}]", text) for number, text in enumerate(texts))
    return [where for where, text in places.items() if secret in text]


def cassette_interactions(path: str | Path) -> list[dict[str, Any]]:
    """The interactions of a vcrpy cassette file as plain data (``request`` and
    ``response`` mappings), for tests that read what a cassette asserts about the wire;
    :func:`answer_text` reads a response's body."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return list(data.get("interactions") or [])


def cassette_problems(
    folder: str | Path, check: Callable[[dict[str, Any]], tuple[int, list[str]]]
) -> tuple[int, list[str]]:
    """Run ``check`` over every interaction of every cassette in ``folder``: how many
    bodies it checked in all, and its problems, each led by ``<cassette>#<interaction>``.

    ``check`` answers ``(bodies checked, problems)`` for one interaction (see
    :func:`cassette_interactions`); an exception it raises (an SDK type refusing a body)
    is that interaction's one problem, so a run reports every cassette at once.
    """
    checked, problems = 0, []
    for file in sorted(Path(folder).glob("*.yaml")):
        for number, interaction in enumerate(cassette_interactions(file)):
            try:
                count, found = check(interaction)
            except Exception as error:
                count, found = 1, [f"{type(error).__name__}: {error}"]
            checked += count
            problems += [f"{file.stem}#{number}: {problem}" for problem in found]
    return checked, problems


def answer_text(interaction: dict[str, Any]) -> str:
    """The body of a cassette interaction's answer as text."""
    body = (interaction["response"].get("body") or {}).get("string") or ""
    return body.decode("utf-8") if isinstance(body, bytes) else str(body)


def sse_payloads(text: str) -> list[Any]:
    """The JSON ``data`` of each server-sent event in ``text``, the ``data:`` lines of an
    event joined; ``[DONE]`` is left out, and any other payload that is not JSON raises
    ``ValueError``."""
    payloads = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(
            line[5:].lstrip(" ") for line in block.splitlines() if line.startswith("data:")
        )
        if data and data.strip() != "[DONE]":
            payloads.append(json.loads(data))
    return payloads


class _Reads(dict[str, Any]):
    """A JSON object that records which of its keys were read, at every depth."""

    def __init__(self, value: dict[str, Any], path: str, read: set[str]) -> None:
        super().__init__(
            {key: _reading(item, f"{path}.{key}", read) for key, item in value.items()}
        )
        self.path, self.read = path, read

    def __getitem__(self, key: str) -> Any:
        self.read.add(f"{self.path}.{key}")
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            self.read.add(f"{self.path}.{key}")
        return super().get(key, default)


def _reading(value: Any, path: str, read: set[str]) -> Any:
    if isinstance(value, dict):
        return _Reads(value, path, read)
    if isinstance(value, list):
        return [_reading(item, f"{path}[]", read) for item in value]
    return value


def _leaves(value: Any, path: str = "$") -> list[str]:
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in _leaves(item, f"{path}.{key}")]
    if isinstance(value, list) and value:
        return [leaf for item in value for leaf in _leaves(item, f"{path}[]")]
    return [path]


def unread_keys(converter: Callable[[Any], Any], body: dict[str, Any]) -> tuple[Any, list[str]]:
    """What ``converter`` (an official SDK's function from a REST body to its own
    shape) makes of ``body``, and the JSON paths of ``body``'s keys it never reads: an
    SDK that converts REST answers drops what it does not know without a word.

    An object the converter takes whole without looking into it (a free-form mapping,
    or one it hands on to a pydantic type that refuses unknown keys itself) counts as
    read to its leaves; one it walks into must have each leaf read."""
    read: set[str] = set()
    converted = converter(_reading(body, "$", read))
    walked = {r.rsplit(".", 1)[0] for r in read} | {r.split("[]")[0] for r in read if "[]" in r}

    def consumed(leaf: str) -> bool:
        if leaf in read:
            return True
        return any(
            leaf.startswith(r + ".") or leaf.startswith(r + "[") for r in read if r not in walked
        )

    return converted, sorted({leaf for leaf in _leaves(body) if not consumed(leaf)})


# ---------------------------------------------------------------------------- conformance

CONFORMANCE_TEXT = "Conformance answer."
CONFORMANCE_KEY = "relay-conformance-FAKEKEY-0123456789"
SCENARIOS = ("text", "tool_call", "rate_limit", "authentication")
_WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def assert_stream_equals_chat(streamed: Response, answer: Response, *, ids: bool = True) -> None:
    """Assert that ``streamed``, a stream's ``end`` response, is the same answer as
    ``answer``, what ``chat`` returned for the same request: a caller may use either.

    Equal: the content parts in order (text, thinking and tool calls with their
    arguments, ids and signatures), hence the text and tool calls; the finish reason;
    the usage. Present in both, not equal: ``id`` (a provider may number a streamed
    answer differently) and ``raw`` (a stream's raw is its chunks, a chat's one body).
    ``ids=False`` is for a provider whose answers carry no id at all (Bedrock's
    Converse): then neither may have one. ``model`` is left out (a provider may name a
    dated snapshot in one and not the other); ``provider``, ``latency`` and ``cost`` are
    the hub's.
    """
    assert streamed.content == answer.content, "the stream's parts differ from chat's"
    assert streamed.text == answer.text
    assert streamed.tool_calls == answer.tool_calls
    assert streamed.finish_reason == answer.finish_reason, (
        f"finish_reason: the stream's {streamed.finish_reason!r}, chat's {answer.finish_reason!r}"
    )
    assert streamed.usage == answer.usage, (
        f"usage: the stream's {streamed.usage}, chat's {answer.usage}"
    )
    if ids:
        assert answer.id, "chat's response has no id: set Response.id from the provider's answer"
        assert streamed.id, "the stream's end response has no id: pass id= to the assembler"
    else:
        assert (streamed.id, answer.id) == (None, None), "ids=False, yet an answer has an id"
    assert answer.raw, "chat's response has no raw: set Response.raw to the provider's payload"
    assert streamed.raw, "the stream's end response has no raw: pass raw= (the chunks)"


def _the_end(events: list[Any]) -> Any:
    """The stream's one ``end`` event, which must be its last."""
    ends = [e for e in events if isinstance(e, EndEvent)]
    assert len(ends) == 1, f"a stream ends with exactly one EndEvent, not {len(ends)}"
    assert events[-1] is ends[0], "the EndEvent is not the stream's last event"
    return ends[0]


class ProviderConformance:
    """The behaviour every provider adapter owes Relay's users, as a pytest test class.

    Subclass it in your plugin's tests, say which provider it is, and say how the
    provider answers each scenario: over HTTP with :meth:`serve` (the suite routes every
    request of the hub there through ``httpx.MockTransport``), or, for a provider that
    does not speak HTTP, with :meth:`scenario_kwargs`. ::

        class TestConformance(ProviderConformance):
            plugin = relay_acme
            provider = "acme"

            def serve(self, scenario, request, stream):
                if scenario == "text":
                    return httpx.Response(200, json={...the wire form of the answer...})
                ...

    The scenarios, and what the suite checks:

    - ``text``: the answer's text is :data:`CONFORMANCE_TEXT`, with token usage;
      streamed (when the adapter declares ``stream``), the deltas join to the same text
      and the one ``end`` event's response equals chat's as
      :func:`assert_stream_equals_chat` defines it (the same parts, finish reason and
      usage; an ``id`` and a ``raw`` in both).
    - ``tool_call`` (when ``tools`` is declared): one call of ``get_weather`` with
      arguments ``{"city": "Paris"}``, finish reason ``tool_calls``.
    - ``rate_limit``: HTTP 429 with ``retry-after: 3`` becomes ``RateLimitError`` with
      ``retry_after == 3``.
    - ``authentication``: a rejected key becomes ``AuthenticationError``, and the key
      (:data:`CONFORMANCE_KEY`, set in ``api_key_env``) is nowhere in the error.

    ``settings`` go into the provider's catalog entry (``{"plugin": "openai-compat",
    "base_url": ...}`` for a provider under a key of its own). It also checks discovery
    through the entry point (``entry_point``, by default the provider's name) with the
    adapter imported only when first used, the allow and block lists, that the entry
    point module stays light, registration in code, that every capability the adapter
    declares is accepted and every one it does not is refused with
    ``UnsupportedCapability``, and that with ``api_key_env`` unset a call is a
    ``CredentialError`` naming the variable before anything is sent (and an adapter built
    by hand, without the hub, raises ``AuthenticationError`` naming it: the
    ``unkeyed_adapter`` scenario). List a scenario the provider cannot produce in
    ``not_applicable`` with the reason; ``"response_id"`` there says the provider's
    answers carry no id, so neither chat's nor the stream's response may have one.
    """

    plugin: Any = None
    provider: str = ""
    model: str = "conformance-model"
    settings: dict[str, Any] = {}  # noqa: RUF012 - the catalog entry's settings, e.g. base_url
    entry_point: str | None = None  # the plugin's name in the entry point group; default provider
    adapter: type | None = None  # the adapter class registering the plugin in code must give
    not_applicable: dict[str, str] = {}  # noqa: RUF012 - read-only, overridden per plugin

    # -- what a plugin provides ---------------------------------------------------------

    def serve(self, scenario: str, request: Any, stream: bool) -> Any:
        """The ``httpx.Response`` the provider sends for ``scenario`` (``stream`` says
        whether the adapter asked for a stream)."""
        raise NotImplementedError(f"{type(self).__name__} must implement serve()")

    def scenario_kwargs(self, scenario: str) -> dict[str, Any]:
        """``provider_kwargs`` that make the provider answer ``scenario`` (for providers
        without HTTP, such as relay-mock); by default none."""
        return {}

    # -- the suite ------------------------------------------------------------------------

    def _hub(
        self,
        scenario: str,
        wrap: Callable[[httpx.Response], httpx.Response] | None = None,
    ) -> Hub:
        import httpx

        def handle(request: httpx.Request) -> httpx.Response:
            accept = request.headers.get("accept", "")
            body = request.content.decode("utf-8", "replace")
            stream = "text/event-stream" in accept or '"stream":true' in body.replace(" ", "")
            response: httpx.Response = self.serve(scenario, request, stream)
            return response if wrap is None else wrap(response)

        # JSON is YAML: the provider's catalog entry, retries off so errors surface at once.
        entry = {"max_retries": 0, **self.settings}
        catalog = f"providers: {json.dumps({self.provider: entry})}\n"
        return hub_for(catalog, self.plugin, transport=httpx.MockTransport(handle))

    def _applicable(self, scenario: str) -> None:
        if scenario in self.not_applicable:
            import pytest

            pytest.skip(f"{scenario}: {self.not_applicable[scenario]}")

    def _declared(self, capability: Capability) -> None:
        """Skip the test, saying why, when the adapter does not declare ``capability``:
        reported as skipped, never as a pass that checked nothing."""
        if capability not in self._capabilities():
            import pytest

            pytest.skip(f"the adapter does not declare {capability.value!r}")

    def _capabilities(self) -> frozenset[Any]:
        with self._hub("text") as hub:
            adapter = hub.get(f"{self.provider}/{self.model}").adapter
            return frozenset(Capability(c) for c in adapter.capabilities)

    def _ask(self, hub: Hub, scenario: str, **options: Any) -> Any:
        return hub.chat(
            f"{self.provider}/{self.model}",
            "Say the conformance answer.",
            provider_kwargs=self.scenario_kwargs(scenario),
            **options,
        )

    def test_entry_point_module_is_light(self) -> None:
        """Importing the plugin's entry point module imports neither httpx nor a private
        module of the plugin (``_adapter``...): the module only registers, naming its
        adapter by an import string. Skipped for a plugin registered in code."""
        import subprocess

        import pytest

        if not isinstance(self.plugin, types.ModuleType):
            pytest.skip("the plugin is registered in code: no entry point module to import")
        module = self.plugin.__name__
        probe = (
            f"import sys, {module}\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore')"
            f" or (m.startswith('{module}.') and m.split('.')[-1].startswith('_'))]\n"
            "print(heavy)"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]", f"importing {module} loaded {result.stdout}"

    def _registered_name(self) -> str:
        """The provider name the plugin registers (the catalog key may differ)."""
        name: str = self.settings.get("plugin", self.provider)
        return name

    def _entry_point(self) -> str:
        import pytest

        if not isinstance(self.plugin, types.ModuleType):
            pytest.skip("the plugin is registered in code: it has no entry point")
        return self.entry_point or self.provider

    def _listing(self, **env: str) -> dict[str, Any]:
        """What a fresh interpreter's registry finds, with ``env`` steering it."""
        import subprocess

        module = self.plugin.__name__
        probe = (
            "import json, sys\n"
            "from relay_core import PluginRegistry\n"
            "registry = PluginRegistry()\n"
            "providers = registry.providers()\n"
            "plugins = {i.name: i.distribution for i in registry.plugins()}\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore')"
            f" or (m.startswith('{module}.') and m.split('.')[-1].startswith('_')))\n"
            f"entry = providers.get({self._registered_name()!r})\n"
            "adapter = entry.load() if entry else None\n"
            "print(json.dumps({'providers': sorted(providers), 'plugins': plugins,"
            " 'heavy': heavy, 'registered': entry.adapter if entry else None,"
            " 'loaded': f'{adapter.__module__}:{adapter.__name__}' if adapter else None}))\n"
        )
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        environment.update(env)
        result = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            env=environment,
            check=True,
        )
        listing: dict[str, Any] = json.loads(result.stdout)
        return listing

    def test_discovered_through_its_entry_point(self) -> None:
        """A fresh interpreter's :class:`PluginRegistry` finds the provider through the
        entry point (:attr:`entry_point`) of an installed distribution, registered as an
        import string (``"relay_acme._adapter:AcmeProvider"``: the module defining the
        class) that nothing imports until the adapter is first loaded."""
        name = self._entry_point()
        listing = self._listing()
        assert self._registered_name() in listing["providers"]
        assert listing["plugins"].get(name), f"no distribution for entry point {name!r}"
        # Registered by import string, imported only when first used.
        assert listing["heavy"] == []
        assert isinstance(listing["registered"], str)
        assert listing["registered"].startswith(f"{self.plugin.__name__}.")
        assert listing["loaded"] == listing["registered"]

    def test_the_block_list_hides_it(self) -> None:
        """The provider loads with the entry point's name in ``RELAY_PLUGINS`` and is
        hidden with it in ``RELAY_BLOCK_PLUGINS``."""
        name = self._entry_point()
        provider = self._registered_name()
        assert provider in self._listing(RELAY_PLUGINS=name)["providers"]
        assert provider not in self._listing(RELAY_BLOCK_PLUGINS=name)["providers"]

    def test_text(self, monkeypatch: Any) -> None:
        """The ``text`` scenario's answer is :data:`CONFORMANCE_TEXT` with finish reason
        ``stop`` and the provider's usage mapped (input and output tokens above 0)."""
        self._applicable("text")
        self._set_key(monkeypatch)
        with self._hub("text") as hub:
            answer = self._ask(hub, "text")
        assert answer.text == CONFORMANCE_TEXT
        assert answer.finish_reason == "stop"
        assert answer.usage.input_tokens > 0
        assert answer.usage.output_tokens > 0
        assert answer.provider == self.provider

    def _stream_and_chat(self, scenario: str, **options: Any) -> tuple[list[Any], Any]:
        """The events of a streamed call and the answer of a chat call, same request."""
        with self._hub(scenario) as hub:
            answer = self._ask(hub, scenario, **options)
            events = list(
                hub.stream(
                    f"{self.provider}/{self.model}",
                    "Say the conformance answer.",
                    provider_kwargs=self.scenario_kwargs(scenario),
                    **options,
                )
            )
        return events, answer

    def test_stream_equals_chat(self, monkeypatch: Any) -> None:
        """With ``stream`` declared, the ``text`` scenario streamed gives text deltas that
        join to :data:`CONFORMANCE_TEXT` and one ``end`` event, the last, whose response
        is chat's as :func:`assert_stream_equals_chat` defines it."""
        self._applicable("text")
        self._set_key(monkeypatch)
        self._declared(Capability.STREAM)
        events, answer = self._stream_and_chat("text")
        end = _the_end(events)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == CONFORMANCE_TEXT
        assert_stream_equals_chat(
            end.response, answer, ids="response_id" not in self.not_applicable
        )

    def test_streams_leave_nothing_open(self, monkeypatch: Any) -> None:
        """A stream read to its end, and one the caller leaves after the first event,
        each close the HTTP answer at once (the connection back in the pool before the
        caller's next line), and leave no generator to the event loop's finalizer, no
        pending task and no unraisable error behind (asyncio's debug mode on)."""
        self._applicable("text")
        self._set_key(monkeypatch)
        self._declared(Capability.STREAM)
        for stop_early in (False, True):
            left = self._stream_leftovers(stop_early=stop_early)
            assert left == {"open": [], "finalized": [], "loop errors": [], "unraisable": []}, (
                f"stop_early={stop_early}: {left}"
            )

    def _stream_leftovers(self, *, stop_early: bool) -> dict[str, list[str]]:
        import asyncio

        import httpx

        class TrackedBody(httpx.AsyncByteStream):
            """A body that knows whether the reader closed it (httpx closes it with the
            response, which is when a connection goes back to its pool). It hands its
            bytes out in pieces, so a reader that stops early leaves some unread, and
            is an iterator, not a generator: nothing of its own to close."""

            def __init__(self, content: bytes) -> None:
                self.pieces = [content[i : i + 64] for i in range(0, len(content), 64)]
                self.closed = False

            def __aiter__(self) -> TrackedBody:
                return self

            async def __anext__(self) -> bytes:
                if not self.pieces:
                    raise StopAsyncIteration
                return self.pieces.pop(0)

            async def aclose(self) -> None:
                self.closed = True

        served: list[TrackedBody] = []

        def tracked(response: httpx.Response) -> httpx.Response:
            body = TrackedBody(response.read())
            served.append(body)
            return httpx.Response(response.status_code, headers=response.headers, stream=body)

        left: dict[str, list[str]] = {
            "open": [],
            "finalized": [],
            "loop errors": [],
            "unraisable": [],
        }
        hub = self._hub("text", tracked)

        async def run() -> None:
            hooks = sys.get_asyncgen_hooks()

            def finalizer(generator: Any) -> None:
                # Called only for a generator dropped before it finished: left to the loop.
                # httpx's own body iterators (aiter_raw...) are left so by httpx itself
                # once the response is closed; they hold no connection by then.
                module = generator.ag_frame.f_globals.get("__name__", "")
                if module.split(".")[0] not in ("httpx", "httpcore"):
                    left["finalized"].append(f"{module}.{generator.__qualname__}")
                if hooks.finalizer is not None:
                    hooks.finalizer(generator)

            sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
            try:
                events = hub.astream(
                    f"{self.provider}/{self.model}",
                    "Say the conformance answer.",
                    provider_kwargs=self.scenario_kwargs("text"),
                )
                async with contextlib.aclosing(events):  # type: ignore[type-var]
                    async for _ in events:
                        if stop_early:
                            break
                left["open"] = [f"answer {i}" for i, b in enumerate(served) if not b.closed]
                gc.collect()
                await asyncio.sleep(0)
                await hub.aclose()
            finally:
                sys.set_asyncgen_hooks(*hooks)

        def unraisable(report: Any) -> None:
            left["unraisable"].append(f"{report.exc_type.__name__}: {report.exc_value}")

        # What earlier tests left to the garbage collector is theirs, not this stream's:
        # collected now, it cannot report itself while this test listens.
        gc.collect()
        previous = sys.unraisablehook
        sys.unraisablehook = unraisable
        loop = asyncio.new_event_loop()
        loop.set_debug(True)
        loop.set_exception_handler(
            lambda _, context: left["loop errors"].append(context["message"])
        )
        try:
            loop.run_until_complete(run())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            hub.close()
            gc.collect()
        finally:
            sys.unraisablehook = previous
        return left

    def test_tool_call(self, monkeypatch: Any) -> None:
        """With ``tools`` declared, the ``tool_call`` scenario's answer is one call of
        ``get_weather`` with arguments ``{"city": "Paris"}`` and an id, finish reason
        ``tool_calls``."""
        self._applicable("tool_call")
        self._set_key(monkeypatch)
        self._declared(Capability.TOOLS)
        with self._hub("tool_call") as hub:
            answer = self._ask(hub, "tool_call", tools=[_WEATHER])
        assert [(c.name, c.arguments) for c in answer.tool_calls] == [
            ("get_weather", {"city": "Paris"})
        ]
        assert answer.tool_calls[0].id
        assert answer.finish_reason == "tool_calls"

    def test_rate_limit(self, monkeypatch: Any) -> None:
        """The ``rate_limit`` scenario (HTTP 429, ``retry-after: 3``) raises a retryable
        :class:`RateLimitError` whose ``retry_after`` is 3."""
        import pytest

        self._applicable("rate_limit")
        self._set_key(monkeypatch)
        with self._hub("rate_limit") as hub, pytest.raises(RateLimitError) as caught:
            self._ask(hub, "rate_limit")
        assert caught.value.retry_after == 3
        assert caught.value.retryable

    def test_authentication(self, monkeypatch: Any) -> None:
        """The ``authentication`` scenario (the key refused) raises a non-retryable
        :class:`AuthenticationError` that shows :data:`CONFORMANCE_KEY` nowhere: not in
        its text, its repr or its ``provider_message``."""
        import pytest

        self._applicable("authentication")
        self._set_key(monkeypatch)
        with self._hub("authentication") as hub, pytest.raises(AuthenticationError) as caught:
            self._ask(hub, "authentication")
        assert not caught.value.retryable
        for text in (str(caught.value), repr(caught.value), caught.value.provider_message):
            assert CONFORMANCE_KEY not in text

    def _capability_requests(self) -> dict[Any, Request]:
        """A request needing each capability a request can ask for (streaming and
        batches are asked for by the call)."""
        target = f"{self.provider}/{self.model}"

        def asking(*parts: Any, **fields: Any) -> Request:
            return Request(messages=(Message.user("x", *parts),), model=target, **fields)

        return {
            Capability.TOOLS: asking(tools=(Tool("t"),)),
            Capability.STRUCTURED_OUTPUT: asking(
                response_schema=ResponseSchema({"type": "object"})
            ),
            Capability.VISION: asking(ImagePart(url="https://example.test/a.png")),
            Capability.DOCUMENTS: asking(DocumentPart(url="https://example.test/a.pdf")),
            Capability.THINKING: asking(config=GenerationConfig(reasoning="low")),
        }

    def test_declared_capabilities_are_accepted(self, monkeypatch: Any) -> None:
        """A request needing a capability the adapter declares (tools, structured output,
        vision, documents, thinking) passes the hub's checks before a call
        (:meth:`relay_core.ModelHandle.prepare`)."""
        self._set_key(monkeypatch)
        declared = self._capabilities()
        with self._hub("text") as hub:
            handle = hub.get(f"{self.provider}/{self.model}")
            for capability, request in self._capability_requests().items():
                if capability in declared:
                    handle.prepare(request)  # raises UnsupportedCapability if refused

    def test_undeclared_capabilities_are_refused(self, monkeypatch: Any) -> None:
        """What needs a capability the adapter does not declare raises
        :class:`UnsupportedCapability` naming it: a chat call needing one, a stream
        without ``stream``, the adapter's ``batch_status`` without ``batch`` (the base
        class's does)."""
        import asyncio

        import pytest

        self._set_key(monkeypatch)
        declared = self._capabilities()
        with self._hub("text") as hub:
            target = f"{self.provider}/{self.model}"
            for capability, request in self._capability_requests().items():
                if capability in declared:
                    continue
                with pytest.raises(UnsupportedCapability, match=str(capability)):
                    hub.chat(request)
            if Capability.STREAM not in declared:
                with pytest.raises(UnsupportedCapability, match="stream"):
                    list(hub.stream(target, "x"))
            if Capability.BATCH not in declared:
                adapter = hub.get(target).adapter
                with pytest.raises(UnsupportedCapability, match="batch"):
                    asyncio.run(adapter.batch_status("b1"))

    def test_registered_in_code_gives_the_adapter(self) -> None:
        """The plugin registered in code, autoload off, gives a :class:`Provider` subclass
        for the provider: :attr:`adapter` when the suite names one."""
        registry = PluginRegistry(autoload=False)
        registry.register(self.plugin, name=self.entry_point or self.provider)
        adapter = registry.provider(self._registered_name()).load()
        assert isinstance(adapter, type)
        assert issubclass(adapter, Provider)
        assert self.adapter in (None, adapter), f"registered {adapter}, not {self.adapter}"

    def test_a_missing_key_names_its_variable_before_anything_is_sent(
        self, monkeypatch: Any
    ) -> None:
        """Through the hub a missing key is a ``CredentialError``; an adapter made
        without the hub raises ``AuthenticationError``; both name the variable to set."""
        import asyncio

        import httpx
        import pytest

        env = self._key_env()
        if not env:
            pytest.skip("the provider reads no API key from the environment")
        monkeypatch.delenv(env, raising=False)
        sent: list[httpx.Request] = []

        def seen(answer: httpx.Response) -> httpx.Response:
            sent.append(answer.request)
            return answer

        def refuse(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(500)

        with self._hub("text", wrap=seen) as hub, pytest.raises(CredentialError, match=env):
            self._ask(hub, "text")
        assert sent == []
        self._applicable("unkeyed_adapter")
        entry = self._entry()
        adapter_class = entry.load()
        settings = ProviderSettings(
            name=self._registered_name(),
            base_url=self.settings.get("base_url", entry.defaults.get("base_url")),
        )
        pool = http.HttpPool(transport=httpx.MockTransport(refuse))
        client = http.HttpClient(
            pool,
            settings,
            base_url=settings.base_url or adapter_class.default_base_url,
            rules=adapter_class.error_rules,
        )
        request = Request.from_prompt("x", model=self.model)
        with pytest.raises(RelayError) as caught:
            asyncio.run(adapter_class(settings, client).chat(request))
        assert sent == [], f"an adapter without a key sent {sent[0].method} {sent[0].url}"
        assert isinstance(caught.value, AuthenticationError), caught.value
        assert env in str(caught.value)

    def _entry(self) -> Any:
        """The registry's entry for the provider (its adapter class and defaults)."""
        with self._hub("text") as hub:
            return hub.plugins.provider(self._registered_name())

    def _key_env(self) -> str | None:
        entry = self._entry()
        env: str | None = entry.defaults.get("api_key_env", entry.load().api_key_env)
        return env

    def _set_key(self, monkeypatch: Any) -> None:
        env = self._key_env()
        if env:
            monkeypatch.setenv(env, CONFORMANCE_KEY)
