"""MkDocs hook: the catalog schema page, generated from ``relay.schema.json`` (what
``relay schema`` prints), each section a table of its fields with their type, default and
meaning. Defaults the schema does not give are read from the ``relay_core`` classes of
the same names."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _type(schema: dict[str, Any]) -> str:
    """A field's type in words, with a link to each section it refers to."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if schema.get("type") == "object" and "properties" in schema:
        return "object"
    if "anyOf" in schema or "oneOf" in schema:
        kinds = [_type(s) for s in schema.get("anyOf", schema.get("oneOf", []))]
        return " or ".join(dict.fromkeys(kinds))
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_type({**schema, "type": k}) for k in kind)
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        inner = schema["additionalProperties"]
        return f"mapping of name to {_type(inner) if inner else 'any'}"
    return str(kind) if kind else "any"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def class_defaults(schema: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The defaults of each section's fields, read from the ``relay_core`` class of the
    section's name (``ProviderConfig``...), as the schema does not hold them all."""
    import attrs

    import relay_core

    found: dict[str, dict[str, str]] = {}
    for name in schema.get("$defs", {}):
        cls = getattr(relay_core, name, None)
        if cls is None or not attrs.has(cls):
            continue
        found[name] = {}
        for field in attrs.fields(cls):
            value = field.default
            if isinstance(value, attrs.Factory) and not value.takes_self:  # type: ignore[arg-type]
                value = value.factory()
            if isinstance(value, tuple):
                value = list(value)
            # A section of its own (ModelConfig's params) shows its fields' defaults.
            with contextlib.suppress(TypeError):
                found[name][field.name] = f"`{json.dumps(value)}`"
    return found


def _fields(schema: dict[str, Any], defaults: dict[str, str]) -> list[str]:
    required = set(schema.get("required", ()))
    rows = ["| Field | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, field in schema.get("properties", {}).items():
        default = defaults.get(name, "")
        if "default" in field:
            default = f"`{json.dumps(field['default'])}`"
        if name in required:
            default = "required"
        notes = [field.get("description", "")]
        for option in field.get("anyOf", []):
            if option.get("description") and option.get("description") != notes[0]:
                notes.append(option["description"])
        if "pattern" in field:
            notes.append(f"Pattern: `{field['pattern']}`.")
        rows.append(
            f"| `{name}` | {_cell(_type(field))} | {_cell(default)} | "
            f"{_cell(' '.join(n for n in notes if n))} |"
        )
    return rows


def catalog_schema_page(
    schema: dict[str, Any], defaults: dict[str, dict[str, str]] | None = None
) -> str:
    """The catalog's JSON Schema as a page: each top-level section, then each section
    type with its fields (type, default, description, allowed values). ``defaults``
    (:func:`class_defaults`) fills in the defaults the schema does not give."""
    defaults = defaults or {}
    lines = [
        "# Catalog schema\n",
        f"{schema.get('description', '')} This page is generated from `relay.schema.json`, "
        "which `relay schema` prints; editors that read JSON Schema complete and check a "
        "catalog with it. A field left out takes its default. The catalog itself is "
        "explained in [The catalog](../concepts/catalog.md).\n",
        "## Top level\n",
        *_fields(schema, {}),
        "",
    ]
    if schema.get("additionalProperties") is False:
        lines.append("Any other top-level key is an error.\n")
    for name, definition in schema.get("$defs", {}).items():
        lines.append(f"## {name}\n")
        if definition.get("description"):
            lines.append(_cell(definition["description"]) + "\n")
        if name in defaults:
            lines.append(f"In Python: [`relay_core.{name}`][relay_core.{name}].\n")
        forms = [form for form in definition.get("anyOf", ()) if "properties" in form]
        if "properties" in definition:
            forms = [definition]
        elif forms:
            others = [
                _type(form) + (f" ({form['description']})" if "description" in form else "")
                for form in definition["anyOf"]
                if "properties" not in form
            ]
            lines.append(f"Either {' or '.join(others)}, or an object:\n")
        else:
            lines.append(f"Type: {_type(definition)}.\n")
        for form in forms:
            lines += [*_fields(form, defaults.get(name, {})), ""]
            if form.get("additionalProperties") is False:
                lines.append("No other field is allowed.\n")
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    schema = json.loads((ROOT / "relay.schema.json").read_text(encoding="utf-8"))
    page = catalog_schema_page(schema, class_defaults(schema))
    files.append(File.generated(config, "reference/catalog-schema.md", content=page))
    return files
