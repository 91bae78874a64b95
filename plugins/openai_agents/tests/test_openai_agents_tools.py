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
from agents import Agent, FunctionTool, ModelBehaviorError, RunConfig, Runner, ToolCallOutputItem
from agents.testing import ScriptedModel, assistant_message, function_call
from typer.testing import CliRunner

from agent_il import IntentLearner
from agent_il.cli import app
from agent_il.tools.adapters import Adapter
from agent_il.tools.checks import AdapterCheckError, check_adapter
from agent_il.tools.surface import SPECS, IntentTools

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


def openai_tool_names(tools: IntentTools) -> list[str]:
    return [t.name for t in function_tools(tools)]


def openai_invoke(tools: IntentTools, name: str, arguments: dict[str, Any]) -> dict[str, Any] | str:
    """One tool call run by the SDK's Runner: the JSON result, or the error text the model gets."""
    try:
        result, _ = run(
            function_tools(tools), [function_call(name, arguments, call_id="contract")], [assistant_message("done")]
        )
    except ModelBehaviorError as exc:  # the SDK's answer to a call of a tool the agent does not have
        return str(exc)
    (output,) = outputs(result)
    return output if output.startswith("error: ") else json.loads(output)


def test_passes_the_adapter_contract(tools: IntentTools) -> None:
    check_adapter("openai-agents", tools.learner, openai_tool_names, openai_invoke)


def _refusal_changed(change: Any) -> Any:
    """openai_invoke, with ``change`` applied to each refusal's text."""

    def invoke(tools: IntentTools, name: str, arguments: dict[str, Any]) -> Any:
        out = openai_invoke(tools, name, arguments)
        return change(out, arguments) if isinstance(out, str) else out

    return invoke


def _declared(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    fields = SPECS[name].input_model.model_fields if name in SPECS else arguments
    return {k: v for k, v in arguments.items() if k in fields}


BROKEN = {  # what a broken adapter would do -> the check that must catch it
    "offers learn_intent with learning off": (
        lambda tools: openai_tool_names(IntentTools(tools.learner, allow_learning=True)),
        openai_invoke,
        "tools exposed",
    ),
    "drops the optional k": (
        openai_tool_names,
        lambda tools, name, args: openai_invoke(tools, name, {k: v for k, v in args.items() if k != "k"}),
        "read results",
    ),
    "ignores the operator's limits": (
        openai_tool_names,
        lambda tools, name, args: openai_invoke(IntentTools(tools.learner, inbox=False), name, args),
        "read results",
    ),
    "drops unknown arguments": (
        openai_tool_names,
        lambda tools, name, args: openai_invoke(tools, name, _declared(name, args)),
        "refusals",
    ),
    "echoes the arguments": (openai_tool_names, _refusal_changed(lambda out, args: f"{out} (got {args})"), "refusals"),
    "hides the reason": (openai_tool_names, _refusal_changed(lambda out, args: "error: invalid call"), "refusals"),
    "raises instead of refusing": (
        openai_tool_names,
        _refusal_changed(lambda out, args: (_ for _ in ()).throw(RuntimeError(out))),
        "learning off",
    ),
}


@pytest.mark.parametrize("broken", BROKEN)
def test_the_contract_catches_a_broken_adapter(fresh_home: Path, tool_encoder, broken: str) -> None:
    list_tools, invoke, check = BROKEN[broken]
    with IntentLearner.open(fresh_home, encoder=tool_encoder) as learner:  # a broken adapter may learn
        with pytest.raises(AdapterCheckError) as caught:
            check_adapter("openai-agents", learner, list_tools, invoke)
    assert check in [f.partition(":")[0] for f in caught.value.failures], caught.value


def test_the_contract_catches_learning_through_a_switched_off_adapter(fresh_home: Path, tool_encoder) -> None:
    def invoke(tools: IntentTools, name: str, args: dict[str, Any]) -> Any:
        return openai_invoke(IntentTools(tools.learner, allow_learning=True, limits=tools.limits), name, args)

    with IntentLearner.open(fresh_home, encoder=tool_encoder) as learner:
        with pytest.raises(AdapterCheckError, match="learning off: learn_intent was accepted with learning off"):
            check_adapter("openai-agents", learner, openai_tool_names, invoke)
        assert "zz_adapter_contract_check" in learner.labels  # it did learn: the check saw it happen


def test_the_contract_checks_the_registration(tools: IntentTools, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AdapterCheckError, match="own code: list_tools never ran code of agent_il_mcp"):
        check_adapter("mcp", tools.learner, openai_tool_names, openai_invoke)  # another adapter's callables
    with pytest.raises(AdapterCheckError, match="registered: no entry point 'openai_agents'"):
        check_adapter("openai_agents", tools.learner, openai_tool_names, openai_invoke)
    misnamed = Adapter(name="openai", description="function tools")
    monkeypatch.setattr("agent_il.tools.checks.load", lambda name: misnamed)
    with pytest.raises(AdapterCheckError, match="its Adapter calls itself 'openai'"):
        check_adapter("openai-agents", tools.learner, openai_tool_names, openai_invoke)
    inconsistent = Adapter(name="openai-agents", description=" ", transports=("stdio",))
    monkeypatch.setattr("agent_il.tools.checks.load", lambda name: inconsistent)
    with pytest.raises(AdapterCheckError) as caught:
        check_adapter("openai-agents", tools.learner, openai_tool_names, openai_invoke)
    assert [f.partition(":")[0] for f in caught.value.failures] == ["description", "transports"]


def test_tools_have_strict_schemas(tools: IntentTools) -> None:
    built = function_tools(tools)
    assert [t.name for t in built] == ["classify_intent", "list_intents", "correct_intent"]  # no learn_intent
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
    assert [t.name for t in model.first_call.tools] == ["classify_intent", "list_intents", "correct_intent"]
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
