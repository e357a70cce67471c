"""OpenAI's strict mode: a JSON Schema compiled to what it accepts, and the nulls it
makes the model send taken out of the answer again.

Built on the core's schema walker (``map_subschemas``) and ``without_optional_nulls``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from relay_core.plugin import Part, Tool, ToolCallPart, map_subschemas, without_optional_nulls

__all__ = ["schema_for_openai", "without_strict_nulls"]

# Keywords strict mode refuses (OpenAI's "supported schemas"; oneOf is refused too), and
# patternProperties, which a closed object would contradict.
_NOT_STRICT = frozenset(
    {
        "allOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
    }
)


def schema_for_openai(schema: dict[str, Any], *, strict: bool) -> tuple[dict[str, Any], bool]:
    """The schema as OpenAI's strict mode accepts it, and whether strict mode is used.

    Strict mode wants every object closed (``additionalProperties: false``) with every
    property required; a property the schema leaves optional is sent as nullable (an enum
    gains ``null`` too), and the nulls are dropped again from the answer
    (:func:`without_strict_nulls`). A schema strict mode cannot express is sent as it is,
    with ``strict: false``: a root that is not an object, an open object (its
    ``additionalProperties`` a schema or true, or no ``properties`` at all), or a keyword
    strict mode refuses (``allOf``, ``oneOf``, ``not``, ``if``/``then``/``else``,
    ``dependentRequired``, ``dependentSchemas``, ``patternProperties``).
    """
    if not strict:
        return schema, False
    try:
        return _strict_node(schema, root=True), True
    except ValueError:
        return schema, False


def without_strict_nulls(
    content: Sequence[Part], tools: Sequence[Tool], *, strict_tools: bool
) -> tuple[Part, ...]:
    """``content`` with the nulls dropped from strict tools' calls, at the arguments the
    tool leaves optional: strict mode made them required, so the model filled them with
    null where the caller's schema means "absent". ``strict_tools``: whether tools were
    sent strict where strict mode can express them."""
    strict = {
        tool.name: tool.parameters
        for tool in tools
        if schema_for_openai(tool.parameters, strict=strict_tools)[1]
    }
    return tuple(
        attrs.evolve(part, arguments=without_optional_nulls(part.arguments, strict[part.name]))
        if isinstance(part, ToolCallPart) and part.name in strict
        else part
        for part in content
    )


def _strict_node(node: Any, *, root: bool = False) -> Any:
    if not isinstance(node, dict):
        return node
    refused = _NOT_STRICT.intersection(node)
    if refused:
        raise ValueError(f"strict mode refuses {sorted(refused)}")
    is_object = node.get("type") == "object" or "properties" in node
    if root and not is_object:
        raise ValueError("strict mode needs an object at the root")
    if is_object:
        if node.get("additionalProperties", False) is not False:
            raise ValueError("a map-like object cannot be strict")
        if "properties" not in node and "additionalProperties" not in node:
            raise ValueError("an object with no properties is open: any keys may come")
    out = map_subschemas(node, _strict_node)
    if is_object:
        required = set(node.get("required") or ())
        properties = out.get("properties") or {}
        out["properties"] = {
            name: prop if name in required else _nullable(prop) for name, prop in properties.items()
        }
        out["required"] = list(properties)
        out["additionalProperties"] = False
    return out


def _nullable(node: Any) -> Any:
    if (
        not isinstance(node, dict)
        or "$ref" in node
        or "const" in node
        or not isinstance(node.get("type"), (str, list))
    ):
        return {"anyOf": [node, {"type": "null"}]}
    types = [node["type"]] if isinstance(node["type"], str) else list(node["type"])
    out = {**node, "type": types if "null" in types else [*types, "null"]}
    if isinstance(node.get("enum"), list) and None not in node["enum"]:
        out["enum"] = [*node["enum"], None]  # else the enum would still refuse the null
    return out
