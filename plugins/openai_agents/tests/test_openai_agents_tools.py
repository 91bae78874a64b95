"""The OpenAI Agents SDK tools run by the SDK's own Runner, with its scripted test model in place of
an LLM (no network): the model calls the tools, the SDK invokes them and feeds the output back."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")  # nothing is exported anywhere

import pytest
from agent_il_openai_agents import function_tools
from agents import Agent, FunctionTool, RunConfig, Runner, ToolCallOutputItem
from agents.testing import ScriptedModel, assistant_message, function_call
from typer.testing import CliRunner

from agent_il import IntentLearner
from agent_il.cli import app
from agent_il.tools import IntentTools

PIZZA = [
    "i want to order a pizza",
    "can you get me a large pepperoni pizza delivered",
    "order two margherita pizzas for tonight",
    "i'd like a pizza with extra cheese please",
    "place an order for a pizza from dominos",
]


@pytest.fixture(scope="module")
def tools(learned_home: Path, tool_encoder) -> Iterator[IntentTools]:
    learner = IntentLearner.open(learned_home, encoder=tool_encoder)
    yield IntentTools(learner)
    learner.close()


def run(tools: list[FunctionTool], *steps: list[Any]) -> tuple[Any, ScriptedModel]:
    model = ScriptedModel(steps)
    agent = Agent(name="support", instructions="Route the user's request.", model=model, tools=tools)
    result = asyncio.run(Runner.run(agent, "help me", run_config=RunConfig(tracing_disabled=True)))
    return result, model


def outputs(result: Any) -> list[str]:
    return [item.output for item in result.new_items if isinstance(item, ToolCallOutputItem)]


def test_tools_have_strict_schemas(tools: IntentTools) -> None:
    built = function_tools(tools)
    assert [t.name for t in built] == ["classify_intent", "list_intents"]  # learning is off by default
    schema = built[0].params_json_schema
    assert built[0].strict_json_schema and schema["additionalProperties"] is False
    assert schema["required"] == ["text", "k"] and schema["properties"]["k"]["default"] == 3


def test_runner_invokes_the_tools_and_feeds_results_back(tools: IntentTools) -> None:
    result, model = run(
        function_tools(tools),
        [function_call("classify_intent", {"text": "i need to pay my water bill", "k": 2}, call_id="c1")],
        [
            function_call("classify_intent", {"text": "hi", "k": 0}, call_id="c2"),
            function_call("classify_intent", "{not json", call_id="c3"),
            function_call("list_intents", {}, call_id="c4"),
        ],
        [assistant_message("You want to pay a bill.")],
    )
    assert result.final_output == "You want to pay a bill."
    classified, bad_k, bad_json, listed = outputs(result)
    out = json.loads(classified)
    assert out["label"] == "pay_bill" and out["known"] is True and len(out["top_k"]) == 2
    assert out["evidence"][0]["label"] == "pay_bill"
    assert bad_k.startswith("error: invalid arguments: k: Input should be greater than or equal to 1")
    assert bad_json.startswith("error: the arguments are not valid JSON")
    assert len(json.loads(listed)["intents"]) == 12
    assert [t.name for t in model.first_call.tools] == ["classify_intent", "list_intents"]
    sent_back = [i for i in model.calls[1].input if isinstance(i, dict) and i.get("type") == "function_call_output"]
    assert [i["call_id"] for i in sent_back] == ["c1"] and json.loads(sent_back[0]["output"]) == out


def test_learning_when_enabled(fresh_home: Path, tool_encoder) -> None:
    with IntentTools(fresh_home, allow_learning=True, encoder=tool_encoder) as intent_tools:
        built = function_tools(intent_tools)
        assert [t.name for t in built][-1] == "learn_intent"
        result, _ = run(
            built,
            [function_call("learn_intent", {"label": "order_pizza", "examples": PIZZA[:2]}, call_id="l1")],
            [function_call("learn_intent", {"label": "order_pizza", "examples": PIZZA}, call_id="l2")],
            [function_call("classify_intent", {"text": "order me a pizza please", "k": 3}, call_id="l3")],
            [assistant_message("Learned.")],
        )
        too_few, learned, classified = outputs(result)
        assert too_few == "error: got 2 examples; give between 3 and 100 per call"
        learned_out = json.loads(learned)
        assert learned_out["new_intent"] is True and learned_out["snapshot"].startswith("auto-")
        assert json.loads(classified)["label"] == "order_pizza"


def test_listed_as_a_library_adapter() -> None:
    listed = CliRunner().invoke(app, ["plugins", "--json"])
    found = {a["name"]: a for a in json.loads(listed.stdout)["adapters"]}
    assert found["openai-agents"]["distribution"] == "agent-il-openai-agents"
    assert found["openai-agents"]["error"] is None and found["openai-agents"]["serve"] is False
