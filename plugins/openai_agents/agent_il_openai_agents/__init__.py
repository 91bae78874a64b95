"""agent-il as OpenAI Agents SDK function tools: ``Agent(tools=function_tools(IntentTools(...)))``."""

from agent_il_openai_agents.tools import from_home, function_tools

__all__ = ["from_home", "function_tools"]
