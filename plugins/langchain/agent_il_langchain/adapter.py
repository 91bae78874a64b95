"""The entry point ``agent-il plugins`` lists (group ``agent_il.adapters``, name ``langchain``).
A library adapter: nothing to serve, import :class:`agent_il_langchain.IntentToolkit`."""

from agent_il.tools import Adapter

ADAPTER = Adapter(name="langchain", description="LangChain toolkit: from agent_il_langchain import IntentToolkit")
