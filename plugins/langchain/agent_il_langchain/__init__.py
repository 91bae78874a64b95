"""agent-il as a LangChain toolkit: ``IntentToolkit(...).get_tools()``."""

from agent_il_langchain.toolkit import IntentTool, IntentToolkit

__all__ = ["IntentTool", "IntentToolkit"]
