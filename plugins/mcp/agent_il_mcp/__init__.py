"""agent-il as an MCP server: ``build_server(tools)``, or ``agent-il serve mcp`` from the shell.

The framework is imported on first use: ``agent-il plugins`` loads this package to list the adapter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_il_mcp.server import build_server, serve


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("agent_il_mcp.server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["build_server", "serve"]
