"""JSON Schemas generated from attrs classes: the catalog's, and structured-output schemas.

The catalog's is generated rather than written, so it cannot drift from what
:func:`load_catalog` accepts; editors use it through the ``# yaml-language-server:
$schema=...`` comment, and ``relay schema`` prints it. :func:`schema_for` gives the schema
of any attrs class, for ``response_schema=MyClass``.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any

import attrs

from relay_core.config import Catalog, CredentialRef, ModelConfig
from relay_core.secrets import Secret
from relay_core.types import SETTING_ALIASES

__all__ = ["catalog_schema", "schema_for"]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}
_CREDENTIAL = {
    "type": "string",
    "pattern": r"^(\$env\.[A-Za-z_][A-Za-z0-9_]*|[a-z][a-z0-9_-]*:.+)$",
    "description": "A reference: $env.NAME, keyring:SERVICE/USER or file:PATH. Never the key.",
}
_TARGET = {"type": "string", "pattern": r"^[^/\s]+/.+$", "description": "provider/model"}


def catalog_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a catalog file."""
    definitions: dict[str, Any] = {}
    root = _for_type(Catalog, definitions)
    _with_aliases(definitions["GenerationConfig"])
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://relay.dev/schema/catalog.json",
        "title": "Relay catalog",
        **definitions.pop("Catalog"),
        "$defs": definitions,
    }
    assert root == {"$ref": "#/$defs/Catalog"}
    return schema


def _with_aliases(settings: dict[str, Any]) -> None:
    # The catalog's params take a setting's other names too (stop_sequences), one of
    # the two names at a time.
    properties = settings["properties"]
    for alias, name in SETTING_ALIASES.items():
        properties[alias] = {**properties[name], "description": f"Another name for {name}."}
        settings.setdefault("allOf", []).append({"not": {"required": [name, alias]}})


def schema_for(tp: Any) -> dict[str, Any]:
    """The JSON Schema of an attrs class (fields of str, int, float, bool, None, Literal,
    unions, lists, tuples, dicts with string keys, and nested attrs classes). Nested
    classes go to ``$defs``. :class:`TypeError` names a field type it cannot express."""
    definitions: dict[str, Any] = {}
    root = _for_type(tp, definitions)
    if "$ref" not in root:
        return root
    body: dict[str, Any] = definitions.pop(root["$ref"].rpartition("/")[2])
    return {**body, "$defs": definitions} if definitions else body


def _for_type(tp: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    if tp is CredentialRef:
        return dict(_CREDENTIAL)
    if tp is Any:
        return {}
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        options = [_for_type(a, definitions) for a in args if not _in_code_only(a)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is dict:
        return {"type": "object", "additionalProperties": _for_type(args[1], definitions)}
    if origin in (tuple, list):
        return {"type": "array", "items": _for_type(args[0], definitions)}
    if attrs.has(tp):
        return _for_class(tp, definitions)
    raise TypeError(f"no JSON Schema for {tp!r}")


def _in_code_only(tp: Any) -> bool:
    """A secret or a resolver callable, which a provider's key may be in code alone: a
    file can hold neither."""
    return tp is Secret or typing.get_origin(tp) is collections.abc.Callable


def _for_class(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    if name not in definitions:
        definitions[name] = {}  # placeholder: a class may refer to itself
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in attrs.fields(attrs.resolve_types(cls)):
            if field.metadata.get("internal"):
                continue
            prop = _for_type(field.type, definitions)
            if "doc" in field.metadata:
                prop = {**prop, "description": field.metadata["doc"]}
            if "pattern" in field.metadata:
                prop = {**prop, "pattern": field.metadata["pattern"]}
            properties[field.name] = prop
            if field.default is attrs.NOTHING:
                required.append(field.name)
        body: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            body["required"] = required
        if cls.__doc__:
            body["description"] = " ".join(cls.__doc__.split())
        if cls is ModelConfig:
            # `fast: mock/echo` is shorthand for `fast: {target: mock/echo}`.
            body = {"anyOf": [_TARGET, body], "description": body.get("description", "")}
        definitions[name] = body
    return {"$ref": f"#/$defs/{name}"}
