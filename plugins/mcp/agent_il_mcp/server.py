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
import socket
import time
from typing import Annotated, Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import Tool as MCPTool
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, WithJsonSchema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import agent_il
from agent_il.errors import AgentILError
from agent_il.serving import runner
from agent_il.serving.access import TOOL_SCOPES, Access
from agent_il.serving.guard import CORS_HEADERS, Guard, GuardSettings
from agent_il.serving.metrics import CONTENT_TYPE, Metrics
from agent_il.serving.runner import HttpSettings
from agent_il.serving.tokens import SCOPES
from agent_il.tools.adapters import DEFAULT_PORT, is_wildcard
from agent_il.tools.models import ToolResult
from agent_il.tools.surface import IntentTools, ToolSpec

TRANSPORTS = {"stdio": "stdio", "http": "streamable-http"}
# What a browser page of an --allowed-origin may send to, and read from, the streamable-HTTP transport.
MCP_CORS_HEADERS = (*CORS_HEADERS, "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-ID")
MCP_CORS_EXPOSE = ("Mcp-Session-Id", "WWW-Authenticate")
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


def _tool_function(tools: IntentTools, spec: ToolSpec, access: Access | None, metrics: Metrics | None) -> Any:
    """A function whose signature mirrors ``spec.input_model`` (the SDK derives the published input
    schema from it, the core's constraints included) and whose return annotation is
    ``spec.output_model`` (structured output). With tokens (``access``), each call runs with the
    tools of its token's scope: a read token calling learn_intent is refused."""

    async def call(**arguments: Any) -> ToolResult:
        try:
            surface = tools
            if access is not None and access.auth:
                token = get_access_token()  # the SDK's bearer middleware let the request in with it
                held = token.scopes[-1] if token is not None and token.scopes else "read"
                surface = access.tools_for(token.client_id if token else None, held, spec.name)
            start = time.perf_counter()
            # on a worker thread: the event loop keeps answering other calls while a learn runs
            result = await surface.acall(spec.name, _json_strings_parsed(spec, arguments))
        except AgentILError as exc:
            if metrics is not None:
                metrics.error("refused")
            raise ToolError(str(exc)) from exc
        if metrics is not None:
            metrics.tool_call(spec.name, result, time.perf_counter() - start)
        return result

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


def _tool(tools: IntentTools, spec: ToolSpec, access: Access | None = None, metrics: Metrics | None = None) -> Tool:
    """The SDK's tool for ``spec``, publishing the signature's schema but checking nothing itself."""
    tool = Tool.from_function(
        _tool_function(tools, spec, access, metrics),
        name=spec.name,
        title=spec.title,
        description=spec.description,
        annotations=_annotations(spec),
        structured_output=True,
    )
    tool.fn_metadata.arg_model = _AsSent  # read at each call; the published schema is already derived
    tool.parameters["additionalProperties"] = False  # the published schema forbids unknown arguments too
    return tool


class _ScopedServer(MCPServer):
    """Lists to each token only the tools its scope may call (the learning switch, per token); a
    call to another is still refused by its scope check. Without tokens it lists them all."""

    async def list_tools(self) -> list[MCPTool]:
        listed = await super().list_tools()
        token = get_access_token()
        if token is None:
            return listed
        return [t for t in listed if TOOL_SCOPES.get(t.name, "admin") in token.scopes]


class TokenVerifier:
    """The SDK's token verifier (``mcp.server.auth.provider.TokenVerifier``) over agent-il's token
    file: the access token names the token (``client_id``) and its scopes, each lower one included."""

    def __init__(self, access: Access) -> None:
        self.access = access

    async def verify_token(self, token: str) -> AccessToken | None:
        found = self.access.verify(token)
        if found is None:
            return None
        scopes = list(SCOPES[: SCOPES.index(found.scope) + 1])
        return AccessToken(token=token, client_id=found.name, scopes=scopes)


def build_server(
    tools: IntentTools,
    name: str = "agent-il",
    *,
    access: Access | None = None,
    metrics: Metrics | None = None,
    url: str | None = None,
) -> MCPServer:
    """An MCP server offering ``tools.specs()``: classify_intent, list_intents and correct_intent,
    and learn_intent only when ``tools`` allows learning. With ``access`` holding tokens it is an
    OAuth resource server (the SDK's auth settings and protected-resource metadata, ``url`` its
    base URL) that accepts agent-il's bearer tokens; ``metrics`` adds ``/metrics``."""
    auth = access is not None and access.auth
    if auth and url is None:
        raise ValueError("a server with tokens needs its base URL (url=...)")
    server = _ScopedServer(
        name,
        instructions=INSTRUCTIONS,
        version=agent_il.__version__,
        log_level="WARNING",
        tools=[_tool(tools, spec, access, metrics) for spec in tools.specs()],
        token_verifier=TokenVerifier(access) if auth else None,  # type: ignore[arg-type]
        auth=_auth_settings(url) if auth else None,
    )
    if metrics is not None:

        @server.custom_route("/metrics", methods=["GET"])
        async def prometheus(request: Request) -> Response:
            try:
                if access is not None:
                    access.allow(access.authenticate(request.headers.get("authorization")), "read")
            except AgentILError as exc:
                return JSONResponse({"error": str(exc)}, 401, headers={"www-authenticate": "Bearer"})
            return Response(await metrics.arender(), media_type=CONTENT_TYPE)

    return server


def _auth_settings(url: str | None) -> AuthSettings:
    """agent-il's server as an OAuth resource server: its tokens come from ``agent-il token create``
    (the server's own URL stands as issuer); every token has the ``read`` scope. The verifier knows
    each token was made for this server, so the token's resource is not checked."""
    return AuthSettings(
        issuer_url=url,  # type: ignore[arg-type]
        resource_server_url=f"{url}/mcp",  # type: ignore[arg-type]
        required_scopes=["read"],
        validate_token_resource=False,
    )


def serve(
    tools: IntentTools,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    http: HttpSettings | None = None,
    access: Access | None = None,
) -> None:
    """Serve until interrupted. ``transport``: ``stdio``, or ``http`` (streamable HTTP at ``/mcp``).
    Binding a non-loopback host is the caller's decision (``agent-il serve`` refuses it without
    tokens unless told). ``http`` and ``access`` (from ``agent-il serve``) add tokens, the guard
    (Host/Origin, body and rate limits), ``/metrics``, TLS."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    if transport == "stdio":
        build_server(tools).run("stdio")
    elif http is None or access is None:
        build_server(tools).run("streamable-http", host=host, port=port)
    else:
        runner.run(
            http_app(tools, access, http.guard, f"{http.scheme}://{_public(host)}:{port}", host), host, port, http
        )


def http_app(tools: IntentTools, access: Access, guard: GuardSettings, url: str, host: str = "127.0.0.1") -> Guard:
    """The streamable-HTTP app behind agent-il's guard, with tokens when ``access`` holds them and ``/metrics``."""
    metrics = Metrics(access.learner)
    server = build_server(tools, access=access, metrics=metrics, url=url)
    # The guard checks Host and Origin against the operator's lists (--allowed-host/--allowed-origin):
    # the SDK's own check, which knows only loopback names, would refuse those with a 421.
    unchecked = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(host=host, transport_security=unchecked)
    return Guard(app, guard, metrics, access.tokens, cors_headers=MCP_CORS_HEADERS, cors_expose=MCP_CORS_EXPOSE)


def _public(host: str) -> str:
    """The host name in the server's own URL (published in its protected-resource metadata)."""
    if is_wildcard(host):
        return socket.gethostname()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
