"""The MCP adapter with the MCP SDK's own client: in process, and against ``agent-il serve mcp``
started as a subprocess over stdio and over streamable HTTP, on a really learned workspace."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_il_mcp import build_server
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from agent_il import IntentLearner
from agent_il.cli import app
from agent_il.tools.checks import check_adapter
from agent_il.tools.surface import IntentTools

AGENT_IL = Path(sys.executable).with_name("agent-il")  # the console script of this environment
PIZZA = {
    "label": "order_pizza",
    "examples": [
        "i want to order a pizza",
        "can you get me a large pepperoni pizza delivered",
        "order two margherita pizzas for tonight",
        "i'd like a pizza with extra cheese please",
        "place an order for a pizza from dominos",
    ],
}
FREEZE = "can you freeze my bank account"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def tools(learned_home: Path, tool_encoder) -> Iterator[IntentTools]:
    learner = IntentLearner.open(learned_home, encoder=tool_encoder)
    yield IntentTools(learner)
    learner.close()


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content  # the text block mirrors it
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error and result.structured_content is None
    return result.content[0].text


async def check_read_only_server(client: Client) -> None:
    """What every read-only server must do, whichever transport reaches it."""
    listed = {t.name: t for t in (await client.list_tools()).tools}
    assert sorted(listed) == ["classify_intent", "correct_intent", "list_intents"]  # no learn_intent unless enabled
    classify = listed["classify_intent"]
    assert classify.annotations.read_only_hint is True and listed["list_intents"].annotations.read_only_hint is True
    assert classify.input_schema["required"] == ["text"]
    assert classify.input_schema["properties"]["k"]["default"] == 3
    assert "description" in classify.input_schema["properties"]["text"]
    assert {"label", "known", "confidence", "top_k", "evidence"} <= set(classify.output_schema["properties"])

    out = structured(await client.call_tool("classify_intent", {"text": "i need to pay my water bill", "k": 2}))
    assert out["label"] == "pay_bill" and out["known"] is True and len(out["top_k"]) == 2
    assert out["evidence"][0]["label"] == "pay_bill" and out["evidence"][0]["task"] == "banking"

    bad_k = error_text(await client.call_tool("classify_intent", {"text": "hi", "k": 0}))
    assert bad_k == (
        "Error executing tool classify_intent: invalid arguments: k: Input should be greater than or equal to 1"
    )
    assert "text" in error_text(await client.call_tool("classify_intent", {"k": 2}))  # the core checks, not the SDK
    too_long = error_text(await client.call_tool("classify_intent", {"text": "x" * 1001}))
    assert "text has 1001 characters; the limit is 1000" in too_long
    assert error_text(await client.call_tool("learn_intent", PIZZA)) == "Unknown tool: learn_intent"  # not offered
    correct = listed["correct_intent"]
    assert correct.annotations.read_only_hint is False and correct.annotations.destructive_hint is False
    assert correct.input_schema["required"] == ["text", "label"]
    queued = structured(await client.call_tool("correct_intent", {"text": FREEZE, "label": "freeze_account"}))
    assert queued["status"] == "queued" and queued["review_id"].startswith("fb-")  # learning off: for review
    unknown_label = error_text(await client.call_tool("correct_intent", {"text": FREEZE, "label": "zz_nothing"}))
    assert "label must be a known intent" in unknown_label and "zz_nothing" not in unknown_label

    intents = structured(await client.call_tool("list_intents", {}))  # still serving after the errors
    assert len(intents["intents"]) == 12 and "order_pizza" not in {i["label"] for i in intents["intents"]}
    again = structured(await client.call_tool("classify_intent", {"text": "what time does my flight land"}))
    assert again["label"] == "flight_status"


async def check_learning_server(client: Client) -> None:
    learn = {t.name: t for t in (await client.list_tools()).tools}["learn_intent"]
    assert learn.annotations.read_only_hint is False and learn.annotations.destructive_hint is False
    assert learn.input_schema["required"] == ["label", "examples"]
    out = structured(await client.call_tool("learn_intent", PIZZA))
    assert out["new_intent"] is True and out["examples"] == 5 and out["intents_total"] == 13
    assert out["snapshot"].startswith("auto-") and [c["name"] for c in out["forgetting_check"]] == ["banking", "travel"]
    assert out["largest_drop"] is not None and out["largest_drop"] <= 5
    refused = error_text(await client.call_tool("learn_intent", {"label": "unknown", "examples": PIZZA["examples"]}))
    assert "'unknown' is reserved" in refused
    pizza = structured(await client.call_tool("classify_intent", {"text": "order me a pizza please"}))
    assert pizza["label"] == "order_pizza"


def mcp_tool_names(tools: IntentTools) -> list[str]:
    async def main() -> list[str]:
        async with Client(build_server(tools)) as client:
            return [t.name for t in (await client.list_tools()).tools]

    return asyncio.run(main())


def mcp_invoke(tools: IntentTools, name: str, arguments: dict[str, Any]) -> dict[str, Any] | str:
    """One tool call as an MCP client makes it: the structured result, or the error result's text."""

    async def main() -> Any:
        async with Client(build_server(tools)) as client:
            return await client.call_tool(name, arguments)

    result = asyncio.run(main())
    return error_text(result) if result.is_error else structured(result)


def test_passes_the_adapter_contract(tools: IntentTools) -> None:
    check_adapter("mcp", tools.learner, mcp_tool_names, mcp_invoke)


def test_in_process_read_only(tools: IntentTools) -> None:
    async def main() -> None:
        async with Client(build_server(tools)) as client:
            await check_read_only_server(client)

    asyncio.run(main())


def test_in_process_learning(fresh_home: Path, tool_encoder) -> None:
    async def main() -> None:
        with IntentTools(fresh_home, allow_learning=True, encoder=tool_encoder) as tools:
            async with Client(build_server(tools)) as client:
                await check_learning_server(client)

    asyncio.run(main())


def stdio_client(home: Path, *extra: str) -> Client:
    params = StdioServerParameters(command=str(AGENT_IL), args=["serve", "mcp", "--home", str(home), *extra], env=ENV)
    return Client(params, read_timeout_seconds=120)


def served_with_torch() -> bool:
    """Whether the ``agent-il serve`` process this one started has torch's library mapped."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != os.getpid():
                continue
            if b"serve" in (stat.parent / "cmdline").read_bytes():
                return "libtorch" in (stat.parent / "maps").read_text()
        except (OSError, ValueError, IndexError):  # a process that ended meanwhile
            continue
    raise AssertionError("no agent-il serve process is running under this one")


def test_stdio_subprocess(fresh_home: Path) -> None:
    async def main() -> None:
        async with stdio_client(fresh_home) as client:
            assert client.server_info.name == "agent-il"
            await check_read_only_server(client)
            assert served_with_torch() is False  # an onnx workspace is served without torch
        async with stdio_client(fresh_home, "--allow-learning") as client:
            await check_learning_server(client)

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_streamable_http_subprocess(fresh_home: Path) -> None:
    port = free_port()
    cmd = [str(AGENT_IL), "serve", "mcp", "--transport", "http", "--port", str(port), "--home", str(fresh_home)]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.3)

        async def main() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=120) as client:
                await check_read_only_server(client)

        asyncio.run(main())
        # Bound to 127.0.0.1, the SDK also refuses requests for another Host (DNS rebinding).
        rebound = httpx.post(f"http://127.0.0.1:{port}/mcp", headers={"Host": "attacker.example"}, json={})
        assert rebound.status_code in (400, 403, 421), rebound.status_code
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_refuses_unsafe_or_wrong_options(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = [
        (["--transport", "http", "--host", "0.0.0.0"], "refusing to bind 0.0.0.0"),
        (["--transport", "http", "--host", "192.168.1.20"], "refusing to bind 192.168.1.20"),
        (["--port", "9000"], "--host and --port apply to --transport http"),
        (["--transport", "sse"], "serves over stdio, http, not 'sse'"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["serve", "mcp", "--home", str(tmp_path / "kb"), *extra])
        assert result.exit_code == 1 and message in result.stderr, result.output
    for passes in (["--transport", "http"], ["--transport", "http", "--host", "0.0.0.0", "--allow-remote"]):
        result = runner.invoke(app, ["serve", "mcp", "--home", str(tmp_path / "kb"), *passes])
        assert result.exit_code == 1 and "no workspace at" in result.stderr  # past the bind check


def test_plugins_lists_the_mcp_adapter() -> None:
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    found = {a["name"]: a for a in json.loads(result.stdout)["adapters"]}
    assert found["mcp"]["distribution"] == "agent-il-mcp" and found["mcp"]["error"] is None
    assert found["mcp"]["serve"] is True and found["mcp"]["transports"] == ["stdio", "http"]
    text = CliRunner().invoke(app, ["plugins"]).stdout
    assert "agent-il serve mcp" in text
