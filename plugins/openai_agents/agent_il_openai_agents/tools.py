"""OpenAI Agents SDK ``FunctionTool``s over agent-il's tool surface.

The SDK hands a function tool its arguments as the model wrote them (a JSON string); the core
validates them, so each tool is a plain ``FunctionTool`` whose schema is the core's input model in
the SDK's strict form (every property required, no others). The model gets the full result as
JSON; a refusal (bad argument, over a limit) comes back as an ``error: ...`` string the model can
act on, as the SDK recommends, and the run goes on. Anything unexpected propagates and fails the run.
"""

from __future__ import annotations

import json
import os
from typing import Any

from agents import FunctionTool, RunContextWrapper
from agents.strict_schema import ensure_strict_json_schema

from agent_il.errors import AgentILError
from agent_il.tools.models import ToolLimits
from agent_il.tools.surface import IntentTools, ToolSpec


def _function_tool(tools: IntentTools, spec: ToolSpec) -> FunctionTool:
    async def invoke(ctx: RunContextWrapper[Any], arguments: str) -> str:
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return f"error: the arguments are not valid JSON ({exc.msg})"
        try:
            # Encoding and learning are CPU work: off the event loop, writes after their turn.
            result = await tools.acall(spec.name, parsed)
        except AgentILError as exc:
            return f"error: {exc}"
        return result.model_dump_json()

    return FunctionTool(
        name=spec.name,
        description=spec.description,
        params_json_schema=ensure_strict_json_schema(spec.input_model.model_json_schema()),
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )


def function_tools(tools: IntentTools) -> list[FunctionTool]:
    """classify_intent, list_intents and correct_intent, plus learn_intent when ``tools`` allows learning."""
    return [_function_tool(tools, spec) for spec in tools.specs()]


def from_home(
    home: str | os.PathLike[str], *, allow_learning: bool = False, limits: ToolLimits | None = None
) -> list[FunctionTool]:
    """Function tools over the workspace at ``home``, opened on first use. Learning stays off unless asked."""
    return function_tools(IntentTools(home, allow_learning=allow_learning, limits=limits))
