"""LangChain tools over agent-il's tool surface.

Each tool is a ``BaseTool`` whose ``args_schema`` is the core's pydantic input model, so
``convert_to_openai_tool`` and ``bind_tools`` see the schema the core validates against. Results use
``response_format="content_and_artifact"``: the model reads a one-line answer, and code finds the
full result (the same JSON object an MCP client gets as structured content) in
``ToolMessage.artifact``. Refusals become ``ToolException``; with ``handle_tool_error`` on, the
agent gets them as an error ``ToolMessage`` and the loop goes on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import BaseModel, ConfigDict, Field

from agent_il.errors import AgentILError
from agent_il.tools.models import ToolLimits, ToolResult
from agent_il.tools.surface import IntentTools, ToolSpec, validation_message


class IntentTool(BaseTool):
    """One agent-il tool. Build them with :class:`IntentToolkit`."""

    name: str
    description: str
    args_schema: type[BaseModel]
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True
    handle_validation_error: Any = validation_message  # the core's wording, for args_schema's own check
    intent_tools: IntentTools = Field(exclude=True)

    @classmethod
    def from_spec(cls, tools: IntentTools, spec: ToolSpec) -> IntentTool:
        return cls(
            name=spec.name,
            description=spec.description,
            args_schema=spec.input_model,
            intent_tools=tools,
            metadata={"read_only": spec.read_only, "title": spec.title},
        )

    def _to_args_and_kwargs(
        self, tool_input: str | dict[str, Any], tool_call_id: str | None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # langchain-core does not parse the input of a tool whose schema has no fields (list_intents),
        # so an unknown argument would be dropped silently: the core's model refuses it here instead.
        if isinstance(tool_input, dict) and tool_input and not self.args_schema.model_fields:
            self.args_schema.model_validate(tool_input)
        return super()._to_args_and_kwargs(tool_input, tool_call_id)

    def _run(self, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        with _refusals():
            return _answer(self.intent_tools.call(self.name, kwargs))

    async def _arun(
        self, run_manager: AsyncCallbackManagerForToolRun | None = None, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        # Encoding and learning are CPU work: the surface's async call runs them off the event loop.
        with _refusals():
            return _answer(await self.intent_tools.acall(self.name, kwargs))


def _answer(result: ToolResult) -> tuple[str, dict[str, Any]]:
    """The line the model reads, and the full result as the artifact."""
    return result.summary(), result.model_dump(mode="json")


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """The core's refusals as LangChain's ``ToolException``, returned to the model as an error message."""
    try:
        yield
    except AgentILError as exc:
        raise ToolException(str(exc)) from exc


class IntentToolkit(BaseToolkit):
    """classify_intent, list_intents and correct_intent, plus learn_intent when ``tools`` allows learning.

    ``IntentToolkit(tools=IntentTools(learner))``, or ``IntentToolkit.from_home("./kb")``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tools: IntentTools

    @classmethod
    def from_home(
        cls, home: str | os.PathLike[str], *, allow_learning: bool = False, limits: ToolLimits | None = None
    ) -> IntentToolkit:
        """Tools over the workspace at ``home``, opened on first use. Learning stays off unless asked."""
        return cls(tools=IntentTools(home, allow_learning=allow_learning, limits=limits))

    def get_tools(self) -> list[BaseTool]:
        return [IntentTool.from_spec(self.tools, spec) for spec in self.tools.specs()]
