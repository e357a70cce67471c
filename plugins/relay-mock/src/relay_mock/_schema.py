"""A deterministic generator of JSON values valid against a JSON Schema.

The mock answers structured-output requests and invents tool-call arguments with it, so
what it produces must validate, and must be the same for the same seed in every process
(the seed comes from the request's fingerprint). It is a generator, not a validator: it
builds one value that satisfies the keywords it knows.

Supported: ``type`` (one or a list), ``const``, ``enum``, objects (``properties``,
``required``, ``additionalProperties``, ``minProperties``/``maxProperties``,
``dependentRequired``), strings (``minLength``/``maxLength``, ``format`` date, date-time,
time, email, uri, uuid, hostname, ipv4, ipv6), integers and numbers (``minimum``,
``maximum``, both forms of ``exclusiveMinimum``/``exclusiveMaximum``, ``multipleOf``),
booleans, null, arrays (``items``, ``prefixItems``, tuple ``items``, ``minItems``/
``maxItems``, ``uniqueItems``, ``contains``), ``anyOf``/``oneOf`` (the first branch),
``allOf`` (merged), and local ``$ref`` into ``$defs``/``definitions`` (recursion ends by
keeping only what is required below a depth). Not honoured: ``pattern``,
``patternProperties``, ``not``, ``if``/``then``/``else``, remote ``$ref``.

What one call builds is bounded (:data:`MAX_VALUES` values, :data:`MAX_CHARS` characters
of strings): the mock runs inside servers, and a schema asking for ``minItems: 100000000``
must be refused at once rather than hold a CPU for minutes and the memory to match.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from relay_core.plugin import UnresolvedReference, resolve_ref

__all__ = ["MAX_CHARS", "MAX_VALUES", "SchemaError", "generate"]

# Below this depth optional properties and optional array items are left out, so
# recursive schemas (trees, linked lists) end; past the hard limit the schema cannot end.
_SOFT_DEPTH = 4
_HARD_DEPTH = 40
# Far beyond any structured answer a test or a demo needs; at about 40 microseconds a
# value, the most one answer can cost is under half a second (off the event loop: see
# the provider).
MAX_VALUES = 10_000
MAX_CHARS = 100_000

_WORDS = (
    "amber", "harbor", "lumen", "cedar", "orbit", "meadow", "quartz", "saffron",
    "tundra", "velvet", "willow", "zephyr", "basalt", "coral", "delta", "ember",
)  # fmt: skip


class SchemaError(ValueError):
    """The schema accepts no value, or needs something the generator cannot do."""


class _Rng:
    """A tiny PRNG over BLAKE2: the same numbers for the same seed on every platform and
    Python version, which ``random.Random`` does not promise."""

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode()
        self._counter = 0

    def below(self, n: int) -> int:
        self._counter += 1
        digest = hashlib.blake2b(self._seed + b":%d" % self._counter, digest_size=8).digest()
        return int.from_bytes(digest, "big") % max(n, 1)

    def between(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)

    def choice(self, items: Sequence[Any]) -> Any:
        return items[self.below(len(items))]


def generate(schema: Mapping[str, Any] | bool, seed: str | int) -> Any:
    """A value valid against ``schema``, the same for the same ``seed``.

    Raises :class:`SchemaError` when the schema accepts no value or cannot be followed
    (a ``$ref`` that does not resolve, a recursion that never ends).
    """
    return _Generator(schema, _Rng(str(seed))).value(schema, 0)


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Both schemas' constraints in one (``allOf``, or a branch with its siblings)."""
    merged = dict(base)
    for key, value in extra.items():
        if key not in merged:
            merged[key] = value
        elif key == "properties":
            merged[key] = {**merged[key], **value}
        elif key == "required":
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        elif key in ("minimum", "minLength", "minItems", "minProperties") and _is_number(value):
            merged[key] = max(merged[key], value)
        elif key in ("maximum", "maxLength", "maxItems", "maxProperties") and _is_number(value):
            merged[key] = min(merged[key], value)
        elif key == "type":
            both = [t for t in _as_list(merged[key]) if t in _as_list(value)]
            if not both:
                raise SchemaError(f"allOf asks for types {merged[key]!r} and {value!r} at once")
            merged[key] = both
        else:
            merged[key] = value
    return merged


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _too_big(what: str) -> SchemaError:
    return SchemaError(
        f"{what}: relay-mock generates at most {MAX_VALUES} values and {MAX_CHARS} "
        "characters of strings per answer"
    )


def _within(schema: Mapping[str, Any], keyword: str, limit: int) -> int:
    """The schema's lower bound ``keyword`` (0 when absent), refused up front when it
    alone asks for more than ``limit``."""
    value = schema.get(keyword, 0)
    if not _is_number(value):
        raise SchemaError(f"{keyword} must be a number, not {value!r}")
    if value > limit:
        raise _too_big(f"{keyword} {value} is too large")
    return int(value)


class _Generator:
    def __init__(self, root: Mapping[str, Any] | bool, rng: _Rng) -> None:
        self.root = root
        self.rng = rng
        self.values = 0
        self.chars = 0

    # -- schema plumbing ----------------------------------------------------------------

    def _resolve(self, ref: str) -> Any:
        try:
            return resolve_ref(self.root, ref)
        except UnresolvedReference as error:
            raise SchemaError(str(error)) from error

    def _flatten(self, schema: Any) -> Any:
        """Fold ``$ref``, ``allOf`` and the first ``anyOf``/``oneOf`` branch into one plain
        schema (nested schemas are left for later, so recursive refs cost nothing here)."""
        for _ in range(_HARD_DEPTH):
            if not isinstance(schema, Mapping):
                return schema
            if "$ref" in schema:
                rest = {k: v for k, v in schema.items() if k != "$ref"}
                target = self._resolve(schema["$ref"])
                schema = _merge(target, rest) if isinstance(target, Mapping) else target
            elif "allOf" in schema:
                merged = {k: v for k, v in schema.items() if k != "allOf"}
                for branch in schema["allOf"]:
                    branch = self._flatten(branch)
                    if branch is False:
                        raise SchemaError("allOf holds a schema that accepts nothing")
                    if isinstance(branch, Mapping):
                        merged = _merge(merged, branch)
                schema = merged
            elif "anyOf" in schema or "oneOf" in schema:
                key = "anyOf" if "anyOf" in schema else "oneOf"
                if not schema[key]:
                    raise SchemaError(f"{key} is empty")
                rest = {k: v for k, v in schema.items() if k != key}
                branch = self._flatten(schema[key][0])
                if not isinstance(branch, Mapping):
                    # true accepts anything, so the siblings alone decide; false stays false.
                    return rest if branch is True else branch
                schema = _merge(rest, branch)
            else:
                return schema
        raise SchemaError("$ref/allOf chain does not end")

    # -- values ---------------------------------------------------------------------------

    def value(self, schema: Any, depth: int) -> Any:
        if depth > _HARD_DEPTH:
            raise SchemaError("the schema's recursion never ends (every level is required)")
        self.values += 1
        if self.values > MAX_VALUES:
            raise _too_big(f"the schema needs more than {MAX_VALUES} values")
        schema = self._flatten(schema)
        if schema is True or schema is None:
            return self._string({})
        if schema is False:
            raise SchemaError("a 'false' schema accepts no value")
        if not isinstance(schema, Mapping):
            raise SchemaError(f"a schema must be an object or a boolean, not {schema!r}")
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if "enum" in schema:
            if not schema["enum"]:
                raise SchemaError("enum is empty")
            return copy.deepcopy(self.rng.choice(schema["enum"]))
        kind = self._type(schema, depth)
        makers: dict[str, Callable[[Mapping[str, Any], int], Any]] = {
            "object": self._object,
            "array": self._array,
            "string": lambda s, _: self._string(s),
            "integer": lambda s, _: self._integer(s),
            "number": lambda s, _: self._number(s),
            "boolean": lambda s, _: self.rng.below(2) == 1,
            "null": lambda s, _: None,
        }
        if kind not in makers:
            raise SchemaError(f"unknown type {kind!r}")
        return makers[kind](schema, depth)

    @staticmethod
    def _type(schema: Mapping[str, Any], depth: int) -> str:
        declared = schema.get("type")
        if isinstance(declared, list):
            if not declared:
                raise SchemaError("type is an empty list")
            # Deep inside a recursive schema, null (when allowed) ends the recursion.
            if depth >= _SOFT_DEPTH and "null" in declared:
                return "null"
            concrete = [t for t in declared if t != "null"]
            return str(concrete[0] if concrete else "null")
        if isinstance(declared, str):
            return declared
        if any(k in schema for k in ("properties", "required", "additionalProperties")):
            return "object"
        if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "multipleOf")):
            return "number"
        return "string"

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = list(dict.fromkeys(schema.get("required") or ()))
        additional = schema.get("additionalProperties", True)
        chosen = list(required)
        if depth < _SOFT_DEPTH:
            chosen += [name for name in properties if name not in chosen]
        limit = schema.get("maxProperties")
        if limit is not None:
            if len(required) > limit:
                raise SchemaError(f"{len(required)} required properties exceed maxProperties")
            chosen = required + [n for n in chosen if n not in required][: limit - len(required)]
        # dependentRequired: a chosen property may bring others with it.
        dependent: Mapping[str, Sequence[str]] = schema.get("dependentRequired") or {}
        for name in list(chosen):
            chosen += [extra for extra in dependent.get(name, ()) if extra not in chosen]
        # Declared order reads naturally: properties first, then any required extras.
        ordered = [n for n in properties if n in chosen] + [
            n for n in chosen if n not in properties
        ]
        result: dict[str, Any] = {}
        for name in ordered:
            if name in properties:
                sub = properties[name]
            elif additional is False:
                raise SchemaError(
                    f"required property {name!r} is not allowed by additionalProperties: false"
                )
            else:
                sub = additional if isinstance(additional, Mapping) else {}
            result[name] = self.value(sub, depth + 1)
        extra = 1
        least = _within(schema, "minProperties", MAX_VALUES)
        while len(result) < least:
            if additional is False:
                raise SchemaError("minProperties needs more properties than the schema allows")
            key = f"extra_{extra}"
            extra += 1
            if key not in result:
                sub = additional if isinstance(additional, Mapping) else {}
                result[key] = self.value(sub, depth + 1)
        return result

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        items = schema.get("items")
        prefix: Sequence[Any] = schema.get("prefixItems") or ()
        rest: Any = items
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix, rest = items, schema.get("additionalItems", True)
        low = _within(schema, "minItems", MAX_VALUES)
        high = schema.get("maxItems")
        if rest is False:
            high = len(prefix) if high is None else min(high, len(prefix))
        count = low if depth >= _SOFT_DEPTH else max(low, self.rng.between(1, 2))
        if high is not None:
            if low > high:
                raise SchemaError(f"minItems {low} exceeds maxItems {high}")
            count = min(count, int(high))
        unique = bool(schema.get("uniqueItems"))
        seen: set[str] = set()
        values: list[Any] = []
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else (True if rest is None else rest)
            if index == 0 and "contains" in schema:
                contains = schema["contains"]
                sub = _merge(sub, contains) if isinstance(sub, Mapping) else contains
            for _ in range(16):
                value = self.value(sub, depth + 1)
                key = json.dumps(value, sort_keys=True)
                if not unique or key not in seen:
                    break
            else:
                if len(values) >= low:
                    break
                raise SchemaError("uniqueItems needs more distinct values than the items allow")
            seen.add(key)
            values.append(value)
        return values

    def _string(self, schema: Mapping[str, Any]) -> str:
        rng = self.rng
        word = rng.choice(_WORDS)
        formats: dict[str, Callable[[], str]] = {
            "date": lambda: (
                f"{rng.between(2020, 2025)}-{rng.between(1, 12):02d}-{rng.between(1, 28):02d}"
            ),
            "date-time": lambda: f"{formats['date']()}T{formats['time']()}",
            "time": lambda: (
                f"{rng.between(0, 23):02d}:{rng.between(0, 59):02d}:{rng.between(0, 59):02d}Z"
            ),
            "email": lambda: f"{word}{rng.between(1, 99)}@example.com",
            "uri": lambda: f"https://example.com/{word}",
            "url": lambda: f"https://example.com/{word}",
            "hostname": lambda: f"{word}.example.com",
            "ipv4": lambda: f"192.0.2.{rng.between(1, 254)}",
            "ipv6": lambda: f"2001:db8::{rng.between(1, 0xFFFF):x}",
            "uuid": lambda: _uuid(rng),
        }
        make = formats.get(str(schema.get("format")))
        text = make() if make is not None else word
        low = _within(schema, "minLength", MAX_CHARS)
        if self.chars + low > MAX_CHARS:
            raise _too_big(f"the schema needs more than {MAX_CHARS} characters of strings")
        # Words joined once, not appended one by one: that copies the text every time.
        words = [text]
        length = len(text)
        while length < low:
            word = rng.choice(_WORDS)
            words.append(word)
            length += len(word) + 1
        text = "-".join(words)
        high = schema.get("maxLength")
        if high is not None:
            if low > high:
                raise SchemaError(f"minLength {low} exceeds maxLength {high}")
            text = text[: int(high)]
        self.chars += len(text)
        if self.chars > MAX_CHARS:
            raise _too_big(f"the schema needs more than {MAX_CHARS} characters of strings")
        return text

    def _integer(self, schema: Mapping[str, Any]) -> int:
        low, high = _bounds(schema)
        first = math.ceil(low[0]) if low else None
        if low and low[1] and first == low[0]:
            first += 1
        last = math.floor(high[0]) if high else None
        if high and high[1] and last == high[0]:
            last -= 1
        step = schema.get("multipleOf")
        # An open range spans 100 steps, so a large multipleOf still has room.
        first, last = _default_range(first, last, 100 * max(1, math.ceil(step or 1)))
        if step is None:
            return self.rng.between(first, last)
        if float(step).is_integer():
            whole = int(step)
            low_k, high_k = -(-first // whole), last // whole
            if low_k > high_k:
                raise SchemaError(f"no integer in [{first}, {last}] is a multiple of {step}")
            return whole * self.rng.between(low_k, min(high_k, low_k + 49))
        # A fractional step (0.5, 0.3...): look for integers it divides, near the bottom.
        candidates = [v for v in range(first, min(last, first + 10_000) + 1) if _multiple(v, step)]
        if not candidates:
            raise SchemaError(f"no integer in [{first}, {last}] is a multiple of {step}")
        return int(self.rng.choice(candidates[:50]))

    def _number(self, schema: Mapping[str, Any]) -> float | int:
        low, high = _bounds(schema)
        first = low[0] if low else None
        last = high[0] if high else None
        step = schema.get("multipleOf")
        if first is None or last is None:
            base_first, base_last = _default_range(
                None if first is None else math.ceil(first),
                None if last is None else math.floor(last),
                100 * max(1, math.ceil(step or 1)),
            )
            first = base_first if first is None else first
            last = base_last if last is None else last
        if first > last or (first == last and ((low and low[1]) or (high and high[1]))):
            raise SchemaError(f"no number lies between {first} and {last}")

        def fits(value: float) -> bool:
            above = value > first if low and low[1] else value >= first
            below = value < last if high and high[1] else value <= last
            return above and below

        if step is not None:
            k_first, k_last = math.ceil(first / step), math.floor(last / step)
            for _ in range(64):
                value: float = round(self.rng.between(k_first, max(k_first, k_last)) * step, 12)
                if fits(value) and _multiple(value, step):
                    return value
            raise SchemaError(f"no number between {first} and {last} is a multiple of {step}")
        # Two decimals read like a real measurement; fall back to the midpoint if rounding
        # pushed the value onto an exclusive bound.
        value = round(first + (last - first) * (self.rng.below(1000) + 1) / 1001, 2)
        return value if fits(value) else float(first + last) / 2


def _bounds(
    schema: Mapping[str, Any],
) -> tuple[tuple[float, bool] | None, tuple[float, bool] | None]:
    """(value, exclusive) of the lower and upper bound, from either draft's spelling."""

    def bound(inclusive_key: str, exclusive_key: str, lower: bool) -> tuple[float, bool] | None:
        found: list[tuple[float, bool]] = []
        inclusive: Any = schema.get(inclusive_key)
        exclusive: Any = schema.get(exclusive_key)
        if _is_number(inclusive):
            # Draft 4 spells an exclusive bound as a boolean beside the inclusive one.
            found.append((inclusive, exclusive is True))
        if _is_number(exclusive):
            found.append((exclusive, True))
        if not found:
            return None
        # The tightest bound wins; at equal values the exclusive one is tighter.
        if lower:
            return max(found, key=lambda b: (b[0], b[1]))
        return min(found, key=lambda b: (b[0], not b[1]))

    return bound("minimum", "exclusiveMinimum", True), bound("maximum", "exclusiveMaximum", False)


def _default_range(first: int | None, last: int | None, span: int = 100) -> tuple[int, int]:
    if first is None and last is None:
        return 0, span
    if first is None:
        assert last is not None
        return last - span, last
    if last is None:
        return first, first + span
    if first > last:
        raise SchemaError(f"no integer lies between {first} and {last}")
    return first, last


def _multiple(value: float, step: float) -> bool:
    # The same test validators apply (jsonschema divides and compares with int()).
    if isinstance(step, int) and isinstance(value, int):
        return value % step == 0
    quotient = value / step
    return math.isfinite(quotient) and int(quotient) == quotient


def _uuid(rng: _Rng) -> str:
    digits = "".join(f"{rng.below(16):x}" for _ in range(32))
    digits = digits[:12] + "4" + digits[13:16] + "89ab"[rng.below(4)] + digits[17:]
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
