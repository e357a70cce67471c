"""Structured answers checked against the request's response schema, with jsonschema.

The verdict names the failing place as a JSON path (``$.items[2].price``) and the
schema keyword that failed, never the answer's own text: a violation's message lands
in batch results and logs, and the answer may hold what a redactor kept out of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from relay_core.plugin import Response, ResponseSchema

__all__ = ["json_path", "schema_problem"]

_SHOWN = 80  # characters of a schema value quoted in a message


def schema_problem(schema: ResponseSchema, response: Response) -> str | None:
    """Why ``response`` does not fit ``schema``, or ``None`` when it does."""
    import jsonschema  # type: ignore[import-untyped]  # ships no type information

    cut = " (the answer was cut at max_tokens)" if response.finish_reason == "length" else ""
    try:
        value = json.loads(response.text)
    except json.JSONDecodeError as error:
        # The decoder's message gives a position, not the text.
        return (
            f"the output is not JSON: {error.msg} at line {error.lineno} column {error.colno}{cut}"
        )
    validator_class = jsonschema.validators.validator_for(
        schema.schema, default=jsonschema.Draft202012Validator
    )
    try:
        validator_class.check_schema(schema.schema)
    except jsonschema.SchemaError as error:
        return f"the response schema {schema.name!r} is not a valid JSON Schema: {error.message}"
    worst = jsonschema.exceptions.best_match(validator_class(schema.schema).iter_errors(value))
    if worst is None:
        return None
    expected = worst.validator_value
    if worst.validator == "required" and isinstance(worst.instance, dict):
        expected = [name for name in expected if name not in worst.instance]  # the missing
    shown = json.dumps(expected, default=str)
    if len(shown) > _SHOWN:
        shown = shown[: _SHOWN - 3] + "..."
    return (
        f"the output does not fit schema {schema.name!r} at {json_path(worst.absolute_path)}: "
        f"it fails {worst.validator!r} ({shown}){cut}"
    )


def json_path(parts: Iterable[Any]) -> str:
    """``["items", 2, "price"]`` as ``$.items[2].price``."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path
