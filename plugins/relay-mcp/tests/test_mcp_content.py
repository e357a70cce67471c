"""MCP tool results as the text of a tool result."""

from __future__ import annotations

import base64

from mcp.types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from relay_core.tools import ToolOutput
from relay_mcp import output_of
from relay_mcp._content import describe_size


def test_text_blocks_are_joined_and_is_error_kept() -> None:
    result = CallToolResult(
        content=[TextContent(text="one"), TextContent(text="two")], is_error=True
    )
    assert output_of(result) == ToolOutput("one\n\ntwo", is_error=True)


def test_structured_content_is_sent_as_json_when_there_is_no_text() -> None:
    only = CallToolResult(content=[], structured_content={"sum": 3, "unit": "m"})
    assert output_of(only) == ToolOutput('{"sum": 3, "unit": "m"}')
    # With text, the text already says it.
    both = CallToolResult(content=[TextContent(text="3 m")], structured_content={"sum": 3})
    assert output_of(both) == ToolOutput("3 m")


def test_other_content_is_described() -> None:
    data = base64.b64encode(bytes(3000)).decode()
    result = CallToolResult(
        content=[
            ImageContent(data=data, mime_type="image/png"),
            AudioContent(data=data, mime_type="audio/wav"),
            ResourceLink(name="report", uri="file:///r.pdf", mime_type="application/pdf"),
            EmbeddedResource(resource=TextResourceContents(uri="file:///a.txt", text="hello")),
            EmbeddedResource(
                resource=BlobResourceContents(uri="file:///b.bin", blob=data, mime_type="x/y")
            ),
        ]
    )
    assert output_of(result).content.split("\n\n") == [
        "[image image/png, 3.0 kB: not shown, tool results carry text only]",
        "[audio audio/wav, 3.0 kB: not shown, tool results carry text only]",
        "[resource link report <file:///r.pdf> (application/pdf)]",
        "[resource <file:///a.txt>]\nhello",
        "[resource <file:///b.bin> x/y, 3.0 kB: binary, not shown]",
    ]


def test_an_empty_result_says_so() -> None:
    assert output_of(CallToolResult(content=[])).content == "(the tool returned no content)"


def test_sizes() -> None:
    assert [describe_size(n) for n in (12, 12_300, 4_000_000)] == ["12 bytes", "12.3 kB", "4.0 MB"]
