"""agent-il as OpenAI Agents SDK function tools: ``Agent(tools=function_tools(IntentTools(...)))``.

The framework is imported on first use: ``agent-il plugins`` loads this package to list the adapter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_il_openai_agents.tools import from_home, function_tools


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("agent_il_openai_agents.tools"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["from_home", "function_tools"]
