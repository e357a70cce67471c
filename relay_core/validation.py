"""A small JSON Schema check, for structured output no server enforced.

Provider plugins use it where the provider does not hold the model to the schema: a
server with only ``response_format: {"type": "json_object"}`` (the schema travels in the
system prompt), or Anthropic's forced tool call, whose input is not promised to satisfy
its ``input_schema``. It covers what structured-output schemas use in practice: ``type`` (one or a
list), ``enum``, ``const``, objects (``properties``, ``required``,
``additionalProperties``, ``minProperties``/``maxProperties``), arrays (``items``,
``prefixItems``, ``minItems``/``maxItems``, ``uniqueItems``), strings
(``minLength``/``maxLength``, ``pattern``), numbers (``minimum``/``maximum``, both forms of
``exclusiveMinimum``/``exclusiveMaximum``, ``multipleOf``), ``anyOf``/``oneOf``/``allOf``/
``not`` and local ``$ref`` into ``$defs``/``definitions``. Unknown keywords (``format``,
``if``...) are accepted, as the specification allows for annotations.

No dependency: ``jsonschema`` would pull in ``referencing`` and the compiled
``rpds-py`` for a check that this module does in a page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from relay_core.jsonschema import UnresolvedReference, resolve_ref

__all__ = ["schema_errors"]

_MAX_DEPTH = 64  # a recursive $ref that never bottoms out must not hang the call
_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    # bool is an int in Python but never a number in JSON
    "integer": lambda v: (
        not isinstance(v, bool)
        and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_errors(value: Any, schema: Mapping[str, Any] | bool) -> list[str]:
    """Where ``value`` breaks ``schema``, as ``"$.path: reason"`` lines (empty: valid)."""
    errors: list[str] = []
    root = schema if isinstance(schema, Mapping) else {}
    _check(value, schema, root, "$", errors, 0)
    return errors


def _check(
    value: Any, schema: Any, root: Mapping[str, Any], path: str, errors: list[str], depth: int
) -> None:
    if schema is True or schema is None:
        return
    if schema is False:
        errors.append(f"{path}: no value is allowed here")
        return
    if not isinstance(schema, Mapping):
        return
    if depth > _MAX_DEPTH:
        errors.append(f"{path}: schema nests deeper than {_MAX_DEPTH} levels")
        return
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, path, errors, depth + 1)
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        if not any(_TYPES.get(name, lambda v: True)(value) for name in names):
            errors.append(f"{path}: expected {' or '.join(map(str, names))}, got {_json(value)}")
            return
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        errors.append(f"{path}: {_json(value)} is not one of {_json(schema['enum'])}")
    if "const" in schema and not _same(value, schema["const"]):
        errors.append(f"{path}: expected {_json(schema['const'])}, got {_json(value)}")
    for sub in schema.get("allOf") or ():
        _check(value, sub, root, path, errors, depth + 1)
    if "anyOf" in schema and not any(_valid(value, sub, root, depth) for sub in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema:
        matched = sum(_valid(value, sub, root, depth) for sub in schema["oneOf"])
        if matched != 1:
            errors.append(f"{path}: matches {matched} branches of oneOf, not exactly one")
    if "not" in schema and _valid(value, schema["not"], root, depth):
        errors.append(f"{path}: matches a schema it must not")
    if isinstance(value, dict):
        _check_object(value, schema, root, path, errors, depth)
    elif isinstance(value, list):
        _check_array(value, schema, root, path, errors, depth)
    elif isinstance(value, str):
        _check_string(value, schema, path, errors)
    elif _TYPES["number"](value):
        _check_number(value, schema, path, errors)


def _valid(value: Any, schema: Any, root: Mapping[str, Any], depth: int) -> bool:
    found: list[str] = []
    _check(value, schema, root, "$", found, depth + 1)
    return not found


def _resolve(ref: Any, root: Mapping[str, Any]) -> Any:
    try:
        return resolve_ref(root, str(ref))
    except UnresolvedReference:
        return True  # a remote reference cannot be fetched here; do not fail on it


def _check_object(
    value: dict[str, Any],
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    path: str,
    errors: list[str],
    depth: int,
) -> None:
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            errors.append(f"{path}: missing required property {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        where = f"{path}.{name}"
        if name in properties:
            _check(item, properties[name], root, where, errors, depth + 1)
        elif extra is False:
            errors.append(f"{path}: property {name!r} is not allowed")
        else:
            _check(item, extra, root, where, errors, depth + 1)
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append(f"{path}: fewer than {schema['minProperties']} properties")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(f"{path}: more than {schema['maxProperties']} properties")


def _check_array(
    value: list[Any],
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    path: str,
    errors: list[str],
    depth: int,
) -> None:
    prefix = schema.get("prefixItems") or []
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else schema.get("items", True)
        _check(item, sub, root, f"{path}[{index}]", errors, depth + 1)
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    if schema.get("uniqueItems"):
        seen = [json.dumps(item, sort_keys=True) for item in value]
        if len(set(seen)) != len(seen):
            errors.append(f"{path}: items are not unique")


def _check_string(value: str, schema: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: shorter than {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: longer than {schema['maxLength']} characters")
    if "pattern" in schema:
        try:
            matched = re.search(str(schema["pattern"]), value) is not None
        except re.error:
            matched = True  # an ECMA-only pattern Python cannot compile: do not guess
        if not matched:
            errors.append(f"{path}: does not match pattern {schema['pattern']!r}")


def _check_number(value: float, schema: Mapping[str, Any], path: str, errors: list[str]) -> None:
    low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
    if low is not None and value < low:
        errors.append(f"{path}: {value} is below the minimum {low}")
    if high is not None and value > high:
        errors.append(f"{path}: {value} is above the maximum {high}")
    # Draft 4 wrote these as booleans beside minimum/maximum; later drafts as numbers.
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    above = low if ex_low is True else _number(ex_low)
    below = high if ex_high is True else _number(ex_high)
    if above is not None and value <= above:
        errors.append(f"{path}: {value} is not above {above}")
    if below is not None and value >= below:
        errors.append(f"{path}: {value} is not below {below}")
    step = _number(schema.get("multipleOf"))
    if step is not None and step > 0:
        quotient = value / step
        if abs(quotient - round(quotient)) > 1e-9:
            errors.append(f"{path}: {value} is not a multiple of {step}")


def _number(value: Any) -> float | None:
    return float(value) if _TYPES["number"](value) else None


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0, but true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def without_optional_nulls(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` without the ``null`` members at properties ``schema`` does not require.

    Providers with a strict structured-output mode (OpenAI) need every property required,
    so an optional one is sent as nullable and comes back as ``null``; dropping it gives
    the value the caller's schema describes (an absent optional field, not a null one).
    """
    return _drop_nulls(value, schema, schema, 0)


def _drop_nulls(value: Any, schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return value
    if "$ref" in schema:
        return _drop_nulls(value, _resolve(schema["$ref"], root), root, depth + 1)
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        return {
            key: _drop_nulls(item, properties.get(key), root, depth + 1)
            for key, item in value.items()
            if not (item is None and key in properties and key not in required)
        }
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_drop_nulls(item, schema["items"], root, depth + 1) for item in value]
    return value
