"""An MCP server (the official SDK's ``MCPServer``) exposing agent-il's tool surface.

Each tool's parameters and structured output come from the core's pydantic models, so the schema
an MCP client sees is the one the core validates against. The arguments reach the core as sent: the
SDK's own check would drop unknown arguments silently and quote the caller's values in its errors.
A refusal (bad argument, over a limit) is raised as the SDK's ``ToolError``, which the client
receives as a tool result with ``isError`` and the core's message; the server keeps serving.
Read tools carry ``readOnlyHint``; learn_intent is not offered at all unless learning is allowed, and
correct_intent, always offered, only queues a correction for the operator's review unless it is.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, WithJsonSchema

import agent_il
from agent_il.errors import AgentILError
from agent_il.tools.adapters import DEFAULT_PORT
from agent_il.tools.models import ToolResult
from agent_il.tools.surface import IntentTools, ToolSpec

TRANSPORTS = {"stdio": "stdio", "http": "streamable-http"}
INSTRUCTIONS = (
    "Intent classification for this agent. Call classify_intent on a user's message to learn what they want "
    "(label 'unknown' means it fits no known intent); list_intents shows what is known. correct_intent reports "
    "a message classified wrongly and the known intent it meant (queued for the operator's review unless learning "
    "is allowed). learn_intent, when offered, teaches a new intent from example messages: use it only when a user "
    "explicitly asks."
)


def _annotations(spec: ToolSpec) -> ToolAnnotations:
    if spec.read_only:
        return ToolAnnotations(title=spec.title, read_only_hint=True, idempotent_hint=True, open_world_hint=False)
    # correct_intent and learn_intent add knowledge (undone by a rollback) or queue it, and delete none.
    return ToolAnnotations(
        title=spec.title, read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
    )


class _AsSent(ArgModelBase):
    """The SDK's argument model for every tool: it takes the arguments as sent, unknown ones
    included, and checks nothing, so that the core checks them all: one validator, the operator's
    limits, and messages that do not echo the caller's values."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _json_strings_parsed(spec: ToolSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    """Some clients send a list as a JSON string; the SDK parses such a string for a parameter that
    is not a string (``FuncMetadata.pre_parse_json``), and so does this, in its place."""
    parsed = dict(arguments)
    for name, value in arguments.items():
        f = spec.input_model.model_fields.get(name)
        if f is None or f.annotation is str or not isinstance(value, str):
            continue
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            continue
        if not isinstance(decoded, str | int | float):
            parsed[name] = decoded
    return parsed


def _tool_function(tools: IntentTools, spec: ToolSpec) -> Any:
    """A function whose signature mirrors ``spec.input_model`` (the SDK derives the published input
    schema from it, the core's constraints included) and whose return annotation is
    ``spec.output_model`` (structured output)."""

    async def call(**arguments: Any) -> ToolResult:
        try:  # on a worker thread: the event loop keeps answering other calls while a learn runs
            return await tools.acall(spec.name, _json_strings_parsed(spec, arguments))
        except AgentILError as exc:
            raise ToolError(str(exc)) from exc

    schema = spec.input_model.model_json_schema()["properties"]
    params = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[(f.annotation, WithJsonSchema(schema[name]))],
            default=inspect.Parameter.empty if f.is_required() else f.default,
        )
        for name, f in spec.input_model.model_fields.items()
    ]
    call.__signature__ = inspect.Signature(params, return_annotation=spec.output_model)  # type: ignore[attr-defined]
    call.__name__ = call.__qualname__ = spec.name
    return call


def _tool(tools: IntentTools, spec: ToolSpec) -> Tool:
    """The SDK's tool for ``spec``, publishing the signature's schema but checking nothing itself."""
    tool = Tool.from_function(
        _tool_function(tools, spec),
        name=spec.name,
        title=spec.title,
        description=spec.description,
        annotations=_annotations(spec),
        structured_output=True,
    )
    tool.fn_metadata.arg_model = _AsSent  # read at each call; the published schema is already derived
    tool.parameters["additionalProperties"] = False  # the published schema forbids unknown arguments too
    return tool


def build_server(tools: IntentTools, name: str = "agent-il") -> MCPServer:
    """An MCP server offering ``tools.specs()``: classify_intent, list_intents and correct_intent,
    and learn_intent only when ``tools`` allows learning."""
    return MCPServer(
        name,
        instructions=INSTRUCTIONS,
        version=agent_il.__version__,
        log_level="WARNING",
        tools=[_tool(tools, spec) for spec in tools.specs()],
    )


def serve(tools: IntentTools, transport: str = "stdio", host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted. ``transport``: ``stdio``, or ``http`` (streamable HTTP at ``/mcp``).
    Binding a non-loopback host is the caller's decision (``agent-il serve`` refuses it unless told)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    server = build_server(tools)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
