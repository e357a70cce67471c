"""A small JSON Schema check for structured output, with no dependency.

Anthropic produces structured output through a forced tool call, and the Messages API
does not promise that a tool's input satisfies its ``input_schema``. The adapter checks
the answer here before handing it out as JSON text. This is a check of the keywords
structured-output schemas use, not a full validator: ``type``, ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``prefixItems``,
``minItems``/``maxItems``, ``minLength``/``maxLength``, ``minimum``/``maximum``,
``exclusiveMinimum``/``exclusiveMaximum`` (numeric form), ``anyOf``/``oneOf``/``allOf``
and local ``$ref`` into ``$defs``/``definitions``. Other keywords (``pattern``,
``format``, ``not``, conditionals) are not checked, so a value they would reject passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["schema_errors"]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
# Past this depth a schema that refers to itself is assumed to be looping.
_MAX_DEPTH = 64


def schema_errors(value: Any, schema: Mapping[str, Any] | bool) -> list[str]:
    """Where ``value`` breaks ``schema``, as ``path: reason`` lines (empty when valid)."""
    errors: list[str] = []
    root = schema if isinstance(schema, Mapping) else {}
    _check(value, schema, root, "$", errors, 0)
    return errors


def _is_type(value: Any, name: str) -> bool:
    # bool is an int in Python, but not an integer or a number in JSON.
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, ()))


def _resolve(ref: str, root: Mapping[str, Any]) -> Any:
    if not ref.startswith("#"):
        return True  # remote references are not followed: accept
    node: Any = root
    for token in ref.lstrip("#").strip("/").split("/"):
        if not token:
            continue
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or token not in node:
            return True
        node = node[token]
    return node


def _check(
    value: Any,
    schema: Mapping[str, Any] | bool,
    root: Mapping[str, Any],
    path: str,
    errors: list[str],
    depth: int,
) -> None:
    if schema is True or depth > _MAX_DEPTH:
        return
    if schema is False:
        errors.append(f"{path}: no value is allowed here")
        return
    assert isinstance(schema, Mapping)
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, path, errors, depth + 1)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, name) for name in names):
            errors.append(f"{path}: expected {' or '.join(names)}, got {type(value).__name__}")
            return
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: must be one of {schema['enum']!r}")
    for sub in schema.get("allOf", ()):
        _check(value, sub, root, path, errors, depth + 1)
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if branches and not any(_valid(value, b, root, depth) for b in branches):
            errors.append(f"{path}: matches none of the {keyword} branches")
    if isinstance(value, dict):
        _check_object(value, schema, root, path, errors, depth)
    elif isinstance(value, list):
        _check_array(value, schema, root, path, errors, depth)
    elif isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, errors)


def _valid(value: Any, schema: Any, root: Mapping[str, Any], depth: int) -> bool:
    found: list[str] = []
    _check(value, schema, root, "$", found, depth + 1)
    return not found


def _check_object(
    value: dict[str, Any],
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    path: str,
    errors: list[str],
    depth: int,
) -> None:
    properties = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            errors.append(f"{path}: missing required property {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _check(item, properties[name], root, f"{path}.{name}", errors, depth + 1)
        elif extra is False:
            errors.append(f"{path}: unexpected property {name!r}")
        elif isinstance(extra, Mapping):
            _check(item, extra, root, f"{path}.{name}", errors, depth + 1)


def _check_array(
    value: list[Any],
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    path: str,
    errors: list[str],
    depth: int,
) -> None:
    if len(value) < schema.get("minItems", 0):
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    prefix = schema.get("prefixItems", [])
    items = schema.get("items", True)
    if isinstance(items, list):  # the older tuple form
        prefix, items = items, schema.get("additionalItems", True)
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else items
        _check(item, sub, root, f"{path}[{index}]", errors, depth + 1)


def _check_number(value: float, schema: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: above the maximum {schema['maximum']}")
    low = schema.get("exclusiveMinimum")
    if isinstance(low, (int, float)) and not isinstance(low, bool) and value <= low:
        errors.append(f"{path}: not above {low}")
    high = schema.get("exclusiveMaximum")
    if isinstance(high, (int, float)) and not isinstance(high, bool) and value >= high:
        errors.append(f"{path}: not below {high}")
