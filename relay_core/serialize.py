"""The one place Relay turns its types into plain data and back (cattrs).

Two converters come from one factory: a lenient one for Relay's own values and provider
payloads, and a strict one (unknown keys are errors) for the catalog. Content parts and
stream events are tagged unions keyed by ``type``; bytes travel as base64 text. Fields at
their default value are left out, which keeps JSONL small and fingerprints stable when a
field is added.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any, TypeVar

import attrs
import cattrs
import cattrs.gen

from relay_core import types as t
from relay_core.embeddings import EmbeddingResponse

# BatchItem names EmbeddingResponse only under TYPE_CHECKING (the embeddings module
# builds on the types module); resolved here, once, for every converter.
attrs.resolve_types(t.BatchItem, localns={"EmbeddingResponse": EmbeddingResponse})

__all__ = [
    "dumps",
    "fingerprint",
    "get_converter",
    "loads",
    "make_converter",
    "structure",
    "unstructure",
    "validation_leaves",
]

T = TypeVar("T")


def _tag(cls: type) -> str:
    tag: str = cls.TAG  # type: ignore[attr-defined]
    return tag


def make_converter(*, strict: bool = False, unions: bool = True) -> cattrs.Converter:
    """A converter that knows every Relay type.

    ``strict`` rejects unknown keys (for the catalog). ``unions=False`` leaves out what
    only messages need (the content-part and stream-event unions, the in-memory-only
    fields), which the catalog never holds and which cost a noticeable part of a cold
    start to configure.
    """
    conv = cattrs.Converter(omit_if_default=True, forbid_extra_keys=strict)
    conv.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
    conv.register_structure_hook(bytes, _structure_bytes)
    conv.register_unstructure_hook(tuple, _unstructure_sequence(conv))
    # `reasoning: high` or `reasoning: 8000`.
    conv.register_structure_hook_func(
        lambda cls: cls == t.ReasoningEffort | int | None, _structure_reasoning
    )
    if not strict:
        # Hand-written JSONL says `"stop": "END"`; read it as one item, not three letters.
        conv.register_structure_hook_func(lambda cls: cls == tuple[str, ...], _structure_strings)
    if unions:
        from cattrs.strategies import configure_tagged_union

        configure_tagged_union(
            t.Part, conv, tag_generator=_tag, tag_name="type", default=t.TextPart
        )
        configure_tagged_union(t.StreamEvent, conv, tag_generator=_tag, tag_name="type")
        _reject_unknown_tags(conv, t.Part, t.PART_TYPES)
        _reject_unknown_tags(conv, t.StreamEvent, t.EVENT_TYPES)
        _accept_content_shorthands(conv)
        # Python classes and the objects parsed into them stay in memory: they are not data.
        # Generated last, so the hooks above (unions, bytes) are the ones they call.
        for cls, name in ((t.ResponseSchema, "python_type"), (t.Response, "parsed")):
            omit: dict[str, Any] = {name: cattrs.gen.override(omit=True)}
            conv.register_unstructure_hook(
                cls,
                cattrs.gen.make_dict_unstructure_fn(
                    cls, conv, _cattrs_omit_if_default=True, **omit
                ),
            )
            conv.register_structure_hook(
                cls,
                cattrs.gen.make_dict_structure_fn(
                    cls, conv, _cattrs_forbid_extra_keys=strict, **omit
                ),
            )
    return conv


def _reject_unknown_tags(conv: cattrs.Converter, union: Any, members: tuple[type, ...]) -> None:
    # cattrs sends an unknown tag to the union's default member (a future part type
    # would silently load as text); only a missing tag means the default.
    tagged = conv.get_structure_hook(union)
    tags = sorted(_tag(cls) for cls in members)

    def hook(value: Any, cls: Any) -> Any:
        if isinstance(value, dict) and value.get("type", tags[0]) not in tags:
            raise ValueError(f"unknown type {value['type']!r}; expected one of {', '.join(tags)}")
        return tagged(value, cls)

    conv.register_structure_hook(union, hook)


def _accept_content_shorthands(conv: cattrs.Converter) -> None:
    # Hand-written JSONL says `"content": "Hi"` as every provider's API does; a message's
    # content takes a string, one part, or a list of both, as Message() itself does.
    part = conv.get_structure_hook(t.Part)

    def hook(value: Any, _: type) -> tuple[t.Part, ...]:
        if isinstance(value, (str, dict)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected text, a part or a list of them, not {type(value).__name__}")
        return tuple(t.TextPart(v) if isinstance(v, str) else part(v, t.Part) for v in value)

    conv.register_structure_hook_func(lambda cls: cls == tuple[t.Part, ...], hook)


def _structure_strings(value: Any, _: type) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


def _structure_reasoning(value: Any, _: type) -> Any:
    # Checked here, not only by the class, so a catalog error points at the field.
    t.check_reasoning(value)
    return value


def _structure_bytes(value: Any, _: type) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected base64 text, got {type(value).__name__}")
    return base64.b64decode(value, validate=True)


def _unstructure_sequence(conv: cattrs.Converter) -> Any:
    # Tuples become lists, so unstructured data is plain JSON whatever the field type.
    def hook(value: tuple[Any, ...]) -> list[Any]:
        return [conv.unstructure(item) for item in value]

    return hook


_converter: cattrs.Converter | None = None


def get_converter() -> cattrs.Converter:
    """The shared lenient converter, built on first use."""
    global _converter
    if _converter is None:
        _converter = make_converter()
    return _converter


def unstructure(value: Any) -> Any:
    """Plain data (dicts, lists, strings, numbers) for any Relay value."""
    converter = get_converter()
    if isinstance(value, t.PART_TYPES):
        return converter.unstructure(value, unstructure_as=t.Part)
    if isinstance(value, t.EVENT_TYPES):
        return converter.unstructure(value, unstructure_as=t.StreamEvent)
    return converter.unstructure(value)


def structure(data: Any, cls: type[T]) -> T:
    """The Relay value of type ``cls`` from plain data; raises cattrs' validation errors."""
    return get_converter().structure(data, cls)


def validation_leaves(
    error: BaseException, at: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], BaseException]]:
    """Each thing a failed :func:`structure` found wrong, with the path to it (field
    names and list positions): cattrs nests them in exception groups with notes."""
    if isinstance(error, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        with_notes, without_notes = error.group_exceptions()
        for inner, note in with_notes:
            step = note.name if isinstance(note, cattrs.AttributeValidationNote) else note.index
            yield from validation_leaves(inner, (*at, step))
        for inner in without_notes:
            yield from validation_leaves(inner, at)
    else:
        yield at, error


def dumps(value: Any) -> str:
    """One line of compact JSON for a Relay value (the JSONL form)."""
    return json.dumps(unstructure(value), ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes, cls: type[T]) -> T:
    return structure(json.loads(text), cls)


def fingerprint(value: Any) -> str:
    """SHA-256 of a value's canonical JSON: sorted keys, no whitespace, ASCII escapes.

    Python's float repr and json's escaping are the same in every supported version, so
    the digest is too.
    """
    canonical = json.dumps(
        unstructure(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
