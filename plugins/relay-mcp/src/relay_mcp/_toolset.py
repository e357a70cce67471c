"""The toolsets: one per configured MCP server, and the object that offers them to a hub."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from relay_core.plugin import Tool, ToolOutput, hookimpl
from relay_mcp._compile import compile_tools
from relay_mcp._session import Runner, Session
from relay_mcp._settings import ServerSettings

__all__ = ["McpServers", "McpToolset"]


class McpServers:
    """What ``relay_configure`` returns for a catalog with ``plugins.mcp``: one
    :class:`McpToolset` per server, offered through ``relay_toolsets``, and ``aclose()``
    ending every session (the hub awaits it when it closes, from any loop).

    Sessions live on a private loop (see :mod:`relay_mcp._session`), started on first
    use; after ``aclose()`` the next use starts it again, as a hub is usable after
    ``close()``.
    """

    def __init__(self, servers: Mapping[str, ServerSettings]) -> None:
        self._lock = threading.Lock()
        self._runner: Runner | None = None
        self.toolsets = tuple(McpToolset(settings, self) for settings in servers.values())

    def __repr__(self) -> str:
        return f"McpServers({[toolset.name for toolset in self.toolsets]})"

    def runner(self) -> Runner:
        """The private loop, started on first use."""
        with self._lock:
            if self._runner is None:
                self._runner = Runner()
            return self._runner

    @hookimpl
    def relay_toolsets(self) -> Sequence[McpToolset]:
        return self.toolsets

    async def aclose(self) -> None:
        """End every session (stdio servers' processes stop) and the private loop."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is None:
            return

        async def shutdown_all() -> None:
            for toolset in self.toolsets:
                await toolset.session.shutdown()

        try:
            await runner.call(shutdown_all())
        finally:
            runner.stop()


class McpToolset:
    """The tools of one MCP server as a :class:`relay_core.tools.Toolset`.

    ``list_tools(provider)`` lists the server's tools (connecting on first use), keeps
    those the ``tools``/``exclude`` settings allow and compiles them for the provider;
    ``call_tool`` checks the arguments against the tool's input schema and runs it.
    """

    def __init__(self, settings: ServerSettings, servers: McpServers) -> None:
        self.name = settings.name
        self.settings = settings
        self.session = Session(settings)
        self._servers = servers
        # Compiled name → MCP name, over every provider compiled for: the names one
        # listing gives are stable, and a loop only calls names it was given.
        self._names: dict[str, str] = {}
        self._schemas: dict[str, Mapping[str, Any]] = {}
        self._validators: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"McpToolset({self.name!r}, transport={self.settings.transport!r})"

    async def listing(self) -> list[Any]:
        """The server's tools that the settings offer, as the MCP SDK lists them."""
        listed = await self._servers.runner().call(self.session.list_tools())
        return [tool for tool in listed if self.settings.offers(tool.name)]

    async def list_tools(self, provider: str | None) -> Sequence[Tool]:
        """The server's tools that the ``tools``/``exclude`` settings offer, compiled for
        ``provider`` (``None``: for any): names, after ``prefix``, within its rules, and
        schemas without what it refuses. Connects on first use, and again after the
        session broke; raises :exc:`~relay_mcp.McpServerError` when the server cannot be
        started, reached or listed. The compiled names of every listing so far are the
        ones :meth:`call_tool` takes."""
        offered = await self.listing()
        compiled = compile_tools(
            ((tool.name, description_of(tool), tool.input_schema) for tool in offered),
            provider,
            prefix=self.settings.prefix,
        )
        self._names.update(compiled.names)
        schemas = {tool.name: tool.input_schema for tool in offered}
        if schemas != self._schemas:
            self._schemas, self._validators = schemas, {}
        return compiled.tools

    def mcp_name(self, name: str) -> str | None:
        """The MCP name of compiled tool name ``name``, once listed."""
        return self._names.get(name)

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        """Run the tool a listing named ``name`` on the server, with ``arguments``, and
        return its output (text; other content described). What the model should hear
        about comes back as ``ToolOutput(..., is_error=True)``, not raised: a name no
        listing gave, arguments the tool's input schema refuses (checked here, before the
        server sees them), a server that cannot be reached, a timeout, a refused call, a
        server that died. The output's ``tool`` is the server's name for the tool."""
        tool = self._names.get(name)
        if tool is None:
            return ToolOutput(f"no tool named {name!r} on MCP server {self.name!r}", is_error=True)
        problem = self._check(tool, arguments)
        if problem is not None:
            return ToolOutput(f"bad arguments for {name!r}: {problem}", is_error=True)
        output = await self._servers.runner().call(self.session.call_tool(tool, dict(arguments)))
        # Audit and the loop's steps name the server's tool, not the compiled name.
        return attrs.evolve(output, tool=tool) if tool != name else output

    def _check(self, tool: str, arguments: Mapping[str, Any]) -> str | None:
        """What is wrong with ``arguments`` for ``tool``'s input schema, or ``None``.

        Checked here so every server's tools refuse bad arguments the same clear way
        (before anything runs); a schema jsonschema cannot read is left to the server.
        """
        import jsonschema  # type: ignore[import-untyped]  # ships no type information

        if tool not in self._validators:
            schema = self._schemas.get(tool)
            validator: Any = None
            if schema is not None:
                cls = jsonschema.validators.validator_for(schema)
                try:
                    cls.check_schema(schema)
                    validator = cls(schema)
                except jsonschema.SchemaError:
                    validator = None
            self._validators[tool] = validator
        validator = self._validators[tool]
        if validator is None:
            return None
        error = jsonschema.exceptions.best_match(validator.iter_errors(dict(arguments)))
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path)
        return f"{error.message} (at {where})" if where else error.message


def description_of(tool: Any) -> str:
    """A tool's description for the model: its ``description``, else its title."""
    annotations = getattr(tool, "annotations", None)
    return (
        tool.description
        or getattr(tool, "title", None)
        or (annotations.title if annotations is not None else None)
        or ""
    )
