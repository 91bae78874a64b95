"""The entry point ``agent-il plugins`` lists (group ``agent_il.adapters``, name ``langchain``).
A library adapter: nothing to serve, import :class:`agent_il_langchain.IntentToolkit`."""

from agent_il.tools.adapters import Adapter  # not agent_il.tools: listing the adapter loads no pydantic

ADAPTER = Adapter(name="langchain", description="LangChain toolkit: from agent_il_langchain import IntentToolkit")
