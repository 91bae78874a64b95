"""The entry point ``agent-il`` finds (group ``agent_il.adapters``, name ``mcp``). It imports the
MCP SDK only when serving, so ``agent-il plugins`` stays fast."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_il.tools.adapters import Adapter, ServeOptions

if TYPE_CHECKING:  # the tool surface loads pydantic and numpy: only when serving
    from agent_il.tools.surface import IntentTools


def _serve(tools: IntentTools, options: ServeOptions) -> None:
    from agent_il_mcp.server import serve

    serve(tools, options.transport, options.host, options.port, http=options.http, access=options.access)


ADAPTER = Adapter(
    name="mcp",
    description="MCP server over stdio or streamable HTTP",
    transports=("stdio", "http"),
    serve=_serve,
)
