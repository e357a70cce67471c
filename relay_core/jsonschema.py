"""Walking a JSON Schema document: its subschemas, and its local references.

The core's validator, relay-mock's value generator, relay-mcp's per-provider tool
compiler and relay-openai's strict-mode rewrite all need the same two things: to follow a
local ``$ref`` (``#/$defs/Point``) to what it points at, and to visit the schemas nested
inside a schema, knowing which keywords hold schemas (``properties`` does; ``enum``,
``const`` and ``default`` hold values, even when a value looks like a schema). They are
here once, for plugins too; what each caller does with a schema stays with the caller.

Only what a document says about itself is followed: a remote reference
(``other.json#/x``) or a plain-name anchor (``#point``) raises
:class:`UnresolvedReference`, and the caller decides whether that is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import unquote

__all__ = [
    "DEFINITIONS",
    "UnresolvedReference",
    "inline_refs",
    "map_subschemas",
    "resolve_ref",
    "subschemas",
]

DEFINITIONS: Final = ("$defs", "definitions")
"""Where a document keeps its named schemas: ``$defs`` (2019-09 on), ``definitions``
(drafts 4 to 7)."""

# Which keywords hold schemas, by the shape that holds them (draft 4 to 2020-12).
_ONE: Final = (
    "additionalItems",
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",  # a schema, or in drafts 4 to 7 a list of them (tuple form)
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_LIST: Final = ("allOf", "anyOf", "items", "oneOf", "prefixItems")
_MAP: Final = ("properties", "patternProperties", "dependentSchemas", *DEFINITIONS)

Location = tuple[str] | tuple[str, int] | tuple[str, str]
"""Where a subschema sits in its parent: ``("not",)``, ``("anyOf", 0)``,
``("properties", "name")``."""


class UnresolvedReference(ValueError):
    """A ``$ref`` that does not lead to a schema in its own document."""


def resolve_ref(root: Mapping[str, Any] | bool, ref: str) -> Any:
    """What the local reference ``ref`` (``#`` then a JSON Pointer, ``#/$defs/Point``)
    points at in the document ``root``.

    Raises :class:`UnresolvedReference` for a reference to another document, a plain-name
    anchor, or a pointer that leads nowhere.
    """
    if not ref.startswith("#"):
        raise UnresolvedReference(f"only local $ref ('#/...') is supported, not {ref!r}")
    pointer = unquote(ref[1:])  # a pointer in a URI fragment is percent-encoded
    if pointer and not pointer.startswith("/"):
        raise UnresolvedReference(f"$ref {ref!r} is an anchor, which is not supported")
    node: Any = root
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise UnresolvedReference(f"$ref {ref!r} does not resolve")
    return node


def _is_schema(value: Any) -> bool:
    return isinstance(value, (Mapping, bool))


def subschemas(schema: Any) -> Iterator[tuple[Location, Any]]:
    """The schemas directly inside ``schema`` (not their own subschemas, and not what a
    ``$ref`` points at), each with where it sits. A value that is not a schema (an
    object or a boolean) where a schema belongs is passed over."""
    if not isinstance(schema, Mapping):
        return
    for key in _ONE:
        if _is_schema(schema.get(key)):
            yield (key,), schema[key]
    for key in _LIST:
        if isinstance(schema.get(key), list):
            for index, item in enumerate(schema[key]):
                if _is_schema(item):
                    yield (key, index), item
    for key in _MAP:
        if isinstance(schema.get(key), Mapping):
            for name, item in schema[key].items():
                if _is_schema(item):
                    yield (key, name), item


def map_subschemas(schema: Mapping[str, Any], change: Callable[[Any], Any]) -> dict[str, Any]:
    """A copy of ``schema`` with each of its :func:`subschemas` replaced by
    ``change(subschema)``; ``schema`` itself is left as it is.

    A recursive rewrite calls this from ``change``, so it decides itself how deep to go.
    """
    out = dict(schema)
    for location, item in subschemas(schema):
        if len(location) == 1:
            out[location[0]] = change(item)
            continue
        key, where = location
        if out[key] is schema[key]:  # copy a list or map once, before its first change
            out[key] = list(schema[key]) if isinstance(schema[key], list) else dict(schema[key])
        out[key][where] = change(item)
    return out


def inline_refs(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with every local ``$ref`` replaced by what it points at, and the root's
    definitions dropped, for consumers that do not resolve references.

    The keywords beside a ``$ref`` are kept beside what it points at. A reference inside
    its own target (a recursive type: a tree, a linked list) becomes ``{}``, any value,
    keeping its description, since inlining it would never end. A reference that does not
    resolve is left as it is.
    """

    def inline(node: Any, seen: tuple[str, ...]) -> Any:
        if not isinstance(node, Mapping):
            return node
        reference = node.get("$ref")
        if isinstance(reference, str):
            try:
                target = resolve_ref(schema, reference)
            except UnresolvedReference:
                target = None
            if _is_schema(target):
                rest = {key: value for key, value in node.items() if key != "$ref"}
                if target is True or target is False:
                    target = {} if target else {"not": {}}
                if reference in seen:
                    described = rest.get("description") or target.get("description")
                    return {"description": described} if described else {}
                return {**inline(target, (*seen, reference)), **inline(rest, seen)}
        return map_subschemas(node, lambda item: inline(item, seen))

    inlined: dict[str, Any] = inline(schema, ())
    return {key: value for key, value in inlined.items() if key not in DEFINITIONS}
