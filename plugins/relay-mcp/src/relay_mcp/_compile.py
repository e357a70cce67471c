"""MCP tools compiled for one provider: names within its alphabet and length, schemas
without what it refuses, and the map from each compiled name back to the MCP name.

The rules are a table (:data:`RULES`): one :class:`Rules` per provider plugin name, each
built from small rules that the tests check one by one. ``None`` (a group that may route
to any provider) and any provider not in the table get :data:`STRICTEST`, a name every
provider accepts and a schema without references.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from relay_core.plugin import Tool, inline_refs

__all__ = ["RULES", "STRICTEST", "Compiled", "NameRule", "Rules", "compile_tools", "rules_for"]


@frozen
class NameRule:
    """Which tool names a provider accepts: characters of ``alphabet`` (a regex class
    body), at most ``max_length`` of them, the first one also in ``first`` when set."""

    alphabet: str
    max_length: int = 64
    first: str | None = None

    def accepts(self, name: str) -> bool:
        """Whether ``name`` is valid as it is."""
        if re.fullmatch(f"[{self.alphabet}]{{1,{self.max_length}}}", name) is None:
            return False
        return self.first is None or re.match(f"[{self.first}]", name) is not None

    def rewrite(self, name: str) -> str:
        """``name`` within the rule: each refused character becomes ``_``, a refused
        first character gets a ``_`` before it, and a name too long is cut and ends
        with 8 hex digits of its hash (so two long names sharing a start stay apart)."""
        text = re.sub(f"[^{self.alphabet}]", "_", name) or "_"
        if self.first and not re.match(f"[{self.first}]", text):
            text = "_" + text
        if len(text) > self.max_length:
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            text = f"{text[: self.max_length - 9]}_{digest}"
        return text


@frozen
class Rules:
    """How one provider takes tools: its :class:`NameRule` and whether JSON Schema
    references (``$ref`` to ``$defs``/``definitions``) must be inlined."""

    names: NameRule
    inline_refs: bool


# Each rule's source is in the README ("How tools are compiled per provider").
_OPENAI_NAMES = NameRule("a-zA-Z0-9_-")
RULES: Mapping[str, Rules] = {
    "openai": Rules(_OPENAI_NAMES, inline_refs=False),
    "azure": Rules(_OPENAI_NAMES, inline_refs=False),
    # Servers behind openai-compat (vLLM, Ollama, Groq...) vary in what they resolve.
    "openai-compat": Rules(_OPENAI_NAMES, inline_refs=True),
    "anthropic": Rules(NameRule("a-zA-Z0-9_-"), inline_refs=False),
    "gemini": Rules(NameRule("a-zA-Z0-9_.:-", first="a-zA-Z_"), inline_refs=True),
    "vertex": Rules(NameRule("a-zA-Z0-9_.-", first="a-zA-Z_"), inline_refs=True),
    "bedrock": Rules(NameRule("a-zA-Z0-9_-"), inline_refs=True),
    "mistral": Rules(NameRule("a-zA-Z0-9_-"), inline_refs=True),
    "cohere": Rules(NameRule("a-zA-Z0-9_", first="a-zA-Z_"), inline_refs=True),
    # The offline provider stands in for a real one: OpenAI's names; it resolves $ref.
    "mock": Rules(_OPENAI_NAMES, inline_refs=False),
}
STRICTEST = Rules(NameRule("a-zA-Z0-9_", first="a-zA-Z_"), inline_refs=True)
"""What every provider in :data:`RULES` accepts: for ``None`` and unknown providers."""


def rules_for(provider: str | None) -> Rules:
    """The rules for ``provider`` (a provider plugin's name), or :data:`STRICTEST`."""
    return RULES.get(provider, STRICTEST) if provider is not None else STRICTEST


@frozen
class Compiled:
    """Tools compiled for one provider, and each compiled name's MCP name."""

    tools: tuple[Tool, ...]
    names: Mapping[str, str]


def compile_tools(
    listed: Iterable[tuple[str, str, Mapping[str, Any]]],
    provider: str | None,
    *,
    prefix: str = "",
) -> Compiled:
    """Compile MCP tools, given as ``(name, description, input_schema)``, for
    ``provider``. ``prefix`` goes before each name, then names are rewritten.

    Names the provider accepts as they are keep them; the others are rewritten and, when
    the result is taken, get ``_2``, ``_3``... in the order of their MCP names, so the
    same listing always compiles to the same names.
    """
    rules = rules_for(provider)
    entries = sorted(listed, key=lambda entry: entry[0])
    taken: dict[str, str] = {}
    for name, _, _ in entries:
        if rules.names.accepts(prefix + name):
            taken[prefix + name] = name
    for name, _, _ in entries:
        if rules.names.accepts(prefix + name):
            continue
        taken[_free(rules.names, rules.names.rewrite(prefix + name), taken)] = name
    compiled_name = {mcp: compiled for compiled, mcp in taken.items()}
    tools = tuple(
        Tool(
            name=compiled_name[name],
            description=description,
            parameters=compile_schema(schema, rules),
        )
        for name, description, schema in entries
    )
    return Compiled(tools=tools, names=taken)


def _free(rule: NameRule, name: str, taken: Mapping[str, str]) -> str:
    if name not in taken:
        return name
    number = 2
    while True:
        suffix = f"_{number}"
        candidate = name[: rule.max_length - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


# ---------------------------------------------------------------------------- schemas

_META_KEYWORDS = ("$schema", "$id", "$comment")


def compile_schema(schema: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    """An MCP ``inputSchema`` as ``rules``' provider takes it (a new dict)."""
    compiled = drop_meta_keywords(copy.deepcopy(dict(schema)))
    if rules.inline_refs:
        compiled = inline_refs(compiled)
    return ensure_object_root(compiled)


def drop_meta_keywords(schema: dict[str, Any]) -> dict[str, Any]:
    """Without ``$schema``, ``$id`` and ``$comment`` at the root: they describe the
    document, not the arguments, and some providers refuse keywords they do not know."""
    return {key: value for key, value in schema.items() if key not in _META_KEYWORDS}


def ensure_object_root(schema: dict[str, Any]) -> dict[str, Any]:
    """With ``type: object`` and ``properties`` at the root (``{}`` for a tool without
    arguments): providers require an object of named arguments, and several refuse an
    object schema without ``properties``."""
    if "type" not in schema:
        schema = {"type": "object", **schema}
    if schema.get("type") == "object" and "properties" not in schema:
        schema = {**schema, "properties": {}}
    return schema
