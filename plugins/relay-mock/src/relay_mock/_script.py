"""What a request or the catalog asks of the mock, checked: faults, scripted replies and
tool calls (``provider_kwargs={"mock": {...}}``), and the provider's ``options``."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from relay_core.plugin import ConfigError, InvalidRequestError, ProviderSettings, Request

__all__ = ["FAULT_KINDS", "Fault", "Options", "Script", "ScriptedCall"]

FAULT_KINDS = ("drip", "latency", "malformed", "rate_limit", "server_error", "timeout")


def _is_seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf


@frozen
class Fault:
    """An injected failure; see the README for the syntax."""

    kind: str
    times: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    latency: float = 0.0

    @classmethod
    def parse(cls, spec: object, where: str) -> Fault:
        def bad(what: str) -> InvalidRequestError:
            return InvalidRequestError(f"bad fault at {where}: {what}")

        if not isinstance(spec, Mapping):
            raise bad(f"a fault is a mapping like {{'kind': 'rate_limit'}}, not {spec!r}")
        known = ("kind", "times", "retry_after", "seconds", "latency")
        for key in spec:
            if key not in known:
                raise bad(f"unknown key {key!r}; a fault takes {', '.join(known)}")
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise bad(f"kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        times = spec.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool)):
            raise bad(f"times must be a whole number, not {times!r}")
        if times is not None and times < 0:
            raise bad(f"times must be 0 or more, not {times}")
        for key in ("retry_after", "seconds", "latency"):
            if spec.get(key) is not None and not _is_seconds(spec[key]):
                raise bad(f"{key} must be a number of seconds >= 0, not {spec[key]!r}")
        if spec.get("retry_after") is not None and kind != "rate_limit":
            raise bad("retry_after applies to rate_limit faults only")
        if spec.get("seconds") is not None and kind not in ("drip", "latency", "timeout"):
            raise bad(
                "seconds applies to drip, latency and timeout faults; use latency: for a delay"
            )
        if kind == "latency" and spec.get("seconds") is None and spec.get("latency") is None:
            raise bad("a latency fault needs seconds")
        if kind == "drip" and spec.get("seconds") is None:
            raise bad("a drip fault needs seconds (between a stream's pieces)")
        return cls(
            kind,
            times,
            spec.get("retry_after"),
            float(spec.get("seconds") or 0.0),
            float(spec.get("latency") or 0.0),
        )


@frozen
class ScriptedCall:
    """A tool call the answer makes: scripted, or chosen and filled in by the mock."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None


@frozen
class Script:
    """What ``provider_kwargs={"mock": {...}}`` asks of one request."""

    reply: str | None = None
    tool_calls: tuple[ScriptedCall, ...] = ()
    fault: Fault | None = None

    @classmethod
    def parse(cls, request: Request) -> Script:
        where = "provider_kwargs['mock']"
        spec = request.provider_kwargs.get("mock")
        if spec is None:
            return cls()
        if not isinstance(spec, Mapping):
            raise InvalidRequestError(f"{where} must be a mapping, not {spec!r}")
        for key in spec:
            if key not in ("reply", "tool_calls", "fault"):
                raise InvalidRequestError(
                    f"{where} has unknown key {key!r}; the mock takes reply, tool_calls, fault"
                )
        reply = spec.get("reply")
        if reply is not None and not isinstance(reply, str):
            raise InvalidRequestError(f"{where}['reply'] must be text, not {reply!r}")
        calls = spec.get("tool_calls") or []
        if not isinstance(calls, (list, tuple)):
            raise InvalidRequestError(f"{where}['tool_calls'] must be a list, not {calls!r}")
        fault = spec.get("fault")
        return cls(
            reply,
            tuple(cls._call(call, f"{where}['tool_calls'][{i}]") for i, call in enumerate(calls)),
            None if fault is None else Fault.parse(fault, f"{where}['fault']"),
        )

    @staticmethod
    def _call(spec: object, where: str) -> ScriptedCall:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise InvalidRequestError(f"{where} must be a mapping with a 'name', not {spec!r}")
        unknown = set(spec) - {"name", "arguments", "id"}
        if unknown:
            raise InvalidRequestError(f"{where} has unknown key {sorted(unknown)[0]!r}")
        arguments = spec.get("arguments") or {}
        call_id = spec.get("id")
        if not isinstance(arguments, Mapping) or (
            call_id is not None and not isinstance(call_id, str)
        ):
            raise InvalidRequestError(f"{where}: arguments must be a mapping and id text")
        try:
            json.dumps(arguments)
        except (TypeError, ValueError) as error:
            raise InvalidRequestError(f"{where}: arguments are not JSON: {error}") from error
        return ScriptedCall(spec["name"], dict(arguments), call_id)


@frozen(kw_only=True)
class Options:
    """The catalog's ``providers.mock.options``, checked."""

    faults: Mapping[str, Any] = attrs.field(factory=dict)
    batch_duration: float = 2.0
    batch_expiry: float | None = None
    batch_max_requests: int | None = 50_000
    batch_max_bytes: int | None = None
    embedding_max_inputs: int | None = 2048
    embedding_max_tokens: int | None = None
    state_dir: Path | None = None
    clock: Callable[[], float] = time.time

    @classmethod
    def parse(cls, settings: ProviderSettings) -> Options:
        where = f"providers.{settings.name}.options"
        values = dict(settings.options)
        known = [a.name for a in attrs.fields(cls)]
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"{where}: unknown option {key!r}; the mock takes {', '.join(known)}"
                )
        if not isinstance(values.get("faults", {}), Mapping):
            raise ConfigError(f"{where}.faults must map model names to faults")
        if not _is_seconds(values.get("batch_duration", 0)):
            raise ConfigError(f"{where}.batch_duration must be seconds >= 0")
        expiry = values.get("batch_expiry")
        if expiry is not None and not (_is_seconds(expiry) and expiry > 0):
            raise ConfigError(f"{where}.batch_expiry must be seconds > 0, or null for never")
        limits = ("batch_max_requests", "batch_max_bytes")
        for limit in (*limits, "embedding_max_inputs", "embedding_max_tokens"):
            value = values.get(limit)
            if value is not None and not (type(value) is int and value > 0):
                raise ConfigError(f"{where}.{limit} must be a whole number > 0, or null")
        state_dir = values.get("state_dir")
        if state_dir is not None and not isinstance(state_dir, (str, os.PathLike)):
            raise ConfigError(f"{where}.state_dir must be a directory path, not {state_dir!r}")
        if state_dir is not None:
            values["state_dir"] = Path(values["state_dir"]).expanduser()
        if not callable(values.get("clock", time.time)):
            raise ConfigError(f"{where}.clock must be a function returning Unix seconds")
        return cls(**values)
