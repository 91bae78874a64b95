"""agent-il as an MCP server: ``build_server(tools)``, or ``agent-il serve mcp`` from the shell."""

from agent_il_mcp.server import build_server, serve

__all__ = ["build_server", "serve"]
