"""The LangChain toolkit in a real tool-calling loop: a langchain-core fake chat model (no network)
asks for tool calls, the tools answer with ToolMessages whose artifact holds the full result."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from agent_il_langchain import IntentTool, IntentToolkit
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field
from typer.testing import CliRunner

from agent_il import IntentLearner
from agent_il.cli import app
from agent_il.tools.checks import check_adapter
from agent_il.tools.surface import IntentTools

PIZZA = [
    "i want to order a pizza",
    "can you get me a large pepperoni pizza delivered",
    "order two margherita pizzas for tonight",
    "i'd like a pizza with extra cheese please",
    "place an order for a pizza from dominos",
]


class ToolCallingFakeModel(GenericFakeChatModel):
    """langchain-core's scripted fake chat model, plus the ``bind_tools`` a tool-calling model has:
    it keeps the OpenAI-format schemas it was given, and records what it was sent."""

    bound: list[dict[str, Any]] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[BaseTool], **kwargs: Any) -> ToolCallingFakeModel:
        self.bound = [convert_to_openai_tool(t) for t in tools]
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def script(*steps: AIMessage) -> ToolCallingFakeModel:
    return ToolCallingFakeModel(messages=iter(steps))


def run_loop(model: Any, tools: list[BaseTool], question: str) -> list[BaseMessage]:
    """The agent loop: ask the model; run every tool call it makes; repeat until it answers."""
    by_name = {t.name: t for t in tools}
    messages: list[BaseMessage] = [HumanMessage(question)]
    while True:
        reply = model.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        messages += [by_name[c["name"]].invoke(c) for c in reply.tool_calls]


async def arun_loop(model: Any, tools: list[BaseTool], question: str) -> list[BaseMessage]:
    by_name = {t.name: t for t in tools}
    messages: list[BaseMessage] = [HumanMessage(question)]
    while True:
        reply = await model.ainvoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        messages += await asyncio.gather(*(by_name[c["name"]].ainvoke(c) for c in reply.tool_calls))


@pytest.fixture(scope="module")
def toolkit(learned_home: Path, tool_encoder) -> Iterator[IntentToolkit]:
    learner = IntentLearner.open(learned_home, encoder=tool_encoder)
    yield IntentToolkit(tools=IntentTools(learner))
    learner.close()


def langchain_tool_names(tools: IntentTools) -> list[str]:
    return [t.name for t in IntentToolkit(tools=tools).get_tools()]


def langchain_invoke(tools: IntentTools, name: str, arguments: dict[str, Any]) -> dict[str, Any] | str:
    """A model's tool call run as an agent loop runs it: the artifact, or the error ToolMessage's text.
    A name the toolkit lacks gets the answer langgraph's ToolNode gives."""
    by_name = {t.name: t for t in IntentToolkit(tools=tools).get_tools()}
    if name not in by_name:
        return f"Error: {name} is not a valid tool, try one of [{', '.join(by_name)}]."
    message = by_name[name].invoke(call(name, arguments, "contract"))
    assert isinstance(message, ToolMessage) and message.tool_call_id == "contract"
    return message.content if message.status == "error" else message.artifact


def test_passes_the_adapter_contract(toolkit: IntentToolkit) -> None:
    check_adapter("langchain", toolkit.tools.learner, langchain_tool_names, langchain_invoke)


def test_toolkit_tools_and_clean_schemas(toolkit: IntentToolkit) -> None:
    tools = toolkit.get_tools()
    assert [t.name for t in tools] == ["classify_intent", "list_intents", "correct_intent"]  # no learn_intent
    assert all(isinstance(t, IntentTool) and t.response_format == "content_and_artifact" for t in tools)
    assert [t.metadata["read_only"] for t in tools] == [True, True, False]
    schema = convert_to_openai_tool(tools[0])["function"]
    assert schema["name"] == "classify_intent" and "unknown" in schema["description"]
    assert schema["parameters"] == {
        "type": "object",
        "properties": {
            "text": {
                "type": "string",
                "minLength": 1,
                "description": "The user's message to classify, as they wrote it.",
            },
            "k": {
                "type": "integer",
                "default": 3,
                "minimum": 1,
                "maximum": 20,
                "description": "How many ranked intents to return.",
            },
        },
        "required": ["text"],
    }


def test_tool_calling_loop_classifies_and_recovers_from_a_bad_call(toolkit: IntentToolkit) -> None:
    model = script(
        AIMessage("", tool_calls=[call("classify_intent", {"text": "i need to pay my water bill", "k": 0}, "c1")]),
        AIMessage("", tool_calls=[call("classify_intent", {"text": "i need to pay my water bill", "k": 2}, "c2")]),
        AIMessage("You want to pay a bill."),
    )
    tools = toolkit.get_tools()
    bound = model.bind_tools(tools)
    assert [b["function"]["name"] for b in bound.bound] == ["classify_intent", "list_intents", "correct_intent"]
    messages = run_loop(bound, tools, "i need to pay my water bill")
    bad, good = messages[2], messages[4]
    assert isinstance(bad, ToolMessage) and bad.status == "error" and bad.tool_call_id == "c1"
    assert bad.content.startswith("invalid arguments: k: Input should be greater than or equal to 1")
    assert isinstance(good, ToolMessage) and good.status == "success" and good.tool_call_id == "c2"
    assert good.content.startswith("pay_bill (confidence ")  # the short answer the model reads
    assert good.artifact["label"] == "pay_bill" and good.artifact["known"] is True  # the full result, for code
    assert len(good.artifact["top_k"]) == 2 and good.artifact["evidence"][0]["label"] == "pay_bill"
    assert model.seen[-1][-1] is good  # the model was called again with the tool's answer
    assert messages[-1].content == "You want to pay a bill."


def test_async_loop_and_tool_errors(toolkit: IntentToolkit) -> None:
    model = script(
        AIMessage(
            "",
            tool_calls=[
                call("list_intents", {}, "a1"),
                call("classify_intent", {"text": "what time does my flight land"}, "a2"),
                call("classify_intent", {"text": "x" * 1001}, "a3"),
                call(
                    "correct_intent",
                    {"text": "can you unlock my bank account", "label": "account_blocked"},
                    "a4",
                ),
            ],
        ),
        AIMessage("done"),
    )
    messages = asyncio.run(arun_loop(model, toolkit.get_tools(), "what do you know?"))
    listed, flight, too_long, corrected = messages[2:6]
    assert corrected.status == "success" and corrected.artifact["status"] == "queued"  # learning off: for review
    assert corrected.content.startswith("correction to 'account_blocked' (was unknown) queued for the operator's")
    assert listed.content.startswith("12 intents: ") and len(listed.artifact["intents"]) == 12
    assert flight.artifact["label"] == "flight_status" and flight.status == "success"
    assert too_long.status == "error" and too_long.content == "text has 1001 characters; the limit is 1000"
    assert too_long.artifact is None


def test_learning_through_the_loop_when_enabled(fresh_home: Path, tool_encoder) -> None:
    with IntentTools(fresh_home, allow_learning=True, encoder=tool_encoder) as intent_tools:
        tools = IntentToolkit(tools=intent_tools).get_tools()
        assert [t.name for t in tools][-1] == "learn_intent" and tools[-1].metadata["read_only"] is False
        model = script(
            AIMessage("", tool_calls=[call("learn_intent", {"label": "unknown", "examples": PIZZA}, "l1")]),
            AIMessage("", tool_calls=[call("learn_intent", {"label": "order_pizza", "examples": PIZZA}, "l2")]),
            AIMessage("", tool_calls=[call("classify_intent", {"text": "order me a pizza please"}, "l3")]),
            AIMessage("Learned it."),
        )
        messages = asyncio.run(arun_loop(model, tools, "learn order_pizza from these"))
        refused, learned, classified = messages[2], messages[4], messages[6]
        assert refused.status == "error" and "'unknown' is reserved" in refused.content
        assert learned.status == "success" and learned.artifact["new_intent"] is True
        assert learned.artifact["snapshot"].startswith("auto-") and "undo: agent-il rollback" in learned.content
        assert [c["name"] for c in learned.artifact["forgetting_check"]] == ["banking", "travel"]
        assert classified.artifact["label"] == "order_pizza"


def test_listed_as_a_library_adapter(tmp_path: Path) -> None:
    listed = CliRunner().invoke(app, ["plugins", "--json"])
    found = {a["name"]: a for a in json.loads(listed.stdout)["adapters"]}
    assert found["langchain"]["distribution"] == "agent-il-langchain" and found["langchain"]["error"] is None
    assert found["langchain"]["serve"] is False
    served = CliRunner().invoke(app, ["serve", "langchain", "--home", str(tmp_path)])
    assert served.exit_code == 1 and "is a library to import, not a server" in served.stderr
