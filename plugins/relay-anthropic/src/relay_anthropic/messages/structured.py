"""Structured output on the Messages API: a forced tool call carries the JSON, which is
checked against the schema and becomes the answer's text. Bedrock's Converse routes use
the same plan."""

from __future__ import annotations

import json
from typing import Any

from attrs import frozen

from relay_core.plugin import (
    FinishReason,
    MalformedResponse,
    Part,
    ResponseSchema,
    TextPart,
    schema_errors,
)

__all__ = ["StructuredOutput"]


@frozen
class StructuredOutput:
    """Structured output as a forced tool: Anthropic's documented way to get JSON that
    follows a schema. A schema whose values are not objects is wrapped in one, because
    a tool's input is always an object."""

    name: str
    schema: dict[str, Any]
    wrapped: bool

    @classmethod
    def of(cls, response_schema: ResponseSchema) -> StructuredOutput:
        """The plan for ``response_schema``: the tool takes the schema's name, and a schema
        that does not describe an object (``type: object``, or ``properties`` without a
        ``type``) is wrapped."""
        schema = response_schema.schema
        is_object = schema.get("type") == "object" or (
            "type" not in schema and "properties" in schema
        )
        return cls(response_schema.name, schema, wrapped=not is_object)

    def tool(self) -> dict[str, Any]:
        """The forced tool's definition as the Messages API takes it (``name``,
        ``description``, ``input_schema``). A wrapped schema becomes the required property
        ``value`` of an object, its ``$defs`` or ``definitions`` kept at the root, where
        its local references point."""
        input_schema = self.schema
        if self.wrapped:
            inner = {k: v for k, v in self.schema.items() if k not in ("$defs", "definitions")}
            input_schema = {"type": "object", "properties": {"value": inner}, "required": ["value"]}
            # Local references point at the root: keep their targets there.
            for key in ("$defs", "definitions"):
                if key in self.schema:
                    input_schema[key] = self.schema[key]
        return {
            "name": self.name,
            "description": f"Answer with a value for {self.name}, following its schema.",
            "input_schema": input_schema,
        }

    def text(self, arguments: Any, *, check: bool) -> str:
        """The tool's input as the answer's JSON text, checked against the schema."""
        value = (
            arguments.get("value") if self.wrapped and isinstance(arguments, dict) else arguments
        )
        if check:
            errors = schema_errors(value, self.schema)
            if errors:
                raise MalformedResponse(
                    f"structured output does not follow the schema {self.name!r}: "
                    + "; ".join(errors[:5])
                )
        return json.dumps(value, ensure_ascii=False)

    def settle(
        self, content: list[Part], answer: str | None, finish: FinishReason, stop: str
    ) -> tuple[list[Part], FinishReason]:
        """The answer's parts and finish reason once the forced call has carried the
        JSON (``answer``, ``None`` when the model made no such call; ``stop`` names the
        provider's stop reason for the error). The call is how the answer travels, not a
        call for the caller to run: the JSON becomes the text, any prose beside it is
        dropped, and ``tool_calls`` becomes ``stop``. An answer cut by the token limit
        may have no call; any other must."""
        if answer is None and finish != "length":
            raise MalformedResponse(
                f"the answer has no call of the structured-output tool {self.name!r} ({stop})"
            )
        content = [part for part in content if not isinstance(part, TextPart)]
        if answer is not None:
            content.append(TextPart(answer))
            finish = "stop" if finish == "tool_calls" else finish
        return content, finish
