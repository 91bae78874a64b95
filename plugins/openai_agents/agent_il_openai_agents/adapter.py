"""The entry point ``agent-il plugins`` lists (group ``agent_il.adapters``, name ``openai-agents``).
A library adapter: nothing to serve, import :func:`agent_il_openai_agents.function_tools`."""

from agent_il.tools.adapters import Adapter  # not agent_il.tools: listing the adapter loads no pydantic

ADAPTER = Adapter(
    name="openai-agents",
    description="OpenAI Agents SDK function tools: from agent_il_openai_agents import function_tools",
)
