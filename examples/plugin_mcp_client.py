"""Talk to `agent-il serve mcp` the way an agent host does: the MCP SDK's client starts the server
over stdio, lists its tools, classifies messages, and (learning enabled here) teaches a new intent.

Run from the repository root (after `pip install -e plugins/mcp`):
    python examples/plugin_mcp_client.py              # on a temporary workspace learned from the quick-start data
    python examples/plugin_mcp_client.py --home ./kb  # on your own workspace (it learns order_pizza!)
"""

import argparse
import asyncio
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

from mcp import Client, StdioServerParameters

from agent_il import IntentLearner

DATA = Path(__file__).parent / "data" / "quickstart"


def quickstart_workspace(path: Path) -> Path:
    with IntentLearner.open(path) as learner:  # closed before the server opens it
        for task in ("banking", "travel"):
            with (DATA / f"{task}.csv").open(newline="") as f:
                rows = list(csv.DictReader(f))
            learner.learn([r["text"] for r in rows], [r["intent"] for r in rows], task=task, holdout=0.2)
    return path


async def main(home: Path) -> None:
    command = shutil.which("agent-il") or str(Path(sys.executable).with_name("agent-il"))
    server = StdioServerParameters(command=command, args=["serve", "mcp", "--home", str(home), "--allow-learning"])
    async with Client(server, read_timeout_seconds=300) as client:
        for tool in (await client.list_tools()).tools:
            print(f"tool {tool.name}: read-only={tool.annotations.read_only_hint}")
        for text in ("i need to pay my water bill", "what time does my flight land", "tell me a joke"):
            out = (await client.call_tool("classify_intent", {"text": text, "k": 2})).structured_content
            nearest = out["evidence"][0]["text"]
            print(f"{text!r} -> {out['label']} (best known: {out['top_k'][0]['label']}; nearest example {nearest!r})")
        examples = ["order me a pizza", "i want a large pepperoni pizza", "get two pizzas delivered tonight"]
        learned = await client.call_tool("learn_intent", {"label": "order_pizza", "examples": examples})
        print("learn_intent:", json.dumps(learned.structured_content, indent=1)[:600])
        out = (await client.call_tool("classify_intent", {"text": "order me a pizza please"})).structured_content
        print(f"'order me a pizza please' -> {out['label']} ({out['confidence']:.2f})")
        bad = await client.call_tool("classify_intent", {"text": "hi", "k": 0})
        print("a bad argument is an error result:", bad.is_error, bad.content[0].text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an existing workspace (default: a temporary one)")
    args = parser.parse_args()
    if args.home:
        asyncio.run(main(args.home))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(quickstart_workspace(Path(tmp) / "kb")))
