"""agent-il as a LangChain toolkit: ``IntentToolkit(...).get_tools()``.

The framework is imported on first use: ``agent-il plugins`` loads this package to list the adapter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_il_langchain.toolkit import IntentTool, IntentToolkit


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("agent_il_langchain.toolkit"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IntentTool", "IntentToolkit"]
