"""agent-il's tools in LangChain: a toolkit of BaseTools, their schemas as a chat model sees them,
and tool calls answered with a short message for the model plus the full result as an artifact.

Run from the repository root (after `pip install -e plugins/langchain`):
    python examples/plugin_langchain.py              # on a temporary workspace learned from the quick-start data
    python examples/plugin_langchain.py --home ./kb  # on your own workspace (read-only: learning stays off)

With a real chat model, hand the same tools to it: `llm.bind_tools(toolkit.get_tools())`, or to an
agent (e.g. LangGraph's `create_react_agent(llm, toolkit.get_tools())`).
"""

import argparse
import csv
import json
import tempfile
from pathlib import Path

from agent_il_langchain import IntentToolkit
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent_il import IntentLearner

DATA = Path(__file__).parent / "data" / "quickstart"


def quickstart_workspace(path: Path) -> Path:
    with IntentLearner.open(path) as learner:
        for task in ("banking", "travel"):
            with (DATA / f"{task}.csv").open(newline="") as f:
                rows = list(csv.DictReader(f))
            learner.learn([r["text"] for r in rows], [r["intent"] for r in rows], task=task, holdout=0.2)
    return path


def main(home: Path) -> None:
    toolkit = IntentToolkit.from_home(home)  # learning is off unless allow_learning=True
    tools = {t.name: t for t in toolkit.get_tools()}
    print(json.dumps(convert_to_openai_tool(tools["classify_intent"]), indent=1))
    # What an agent loop does with a model's tool call: run it and get a ToolMessage back.
    message = tools["classify_intent"].invoke(
        {"type": "tool_call", "id": "call_1", "name": "classify_intent", "args": {"text": "why was my account blocked"}}
    )
    print("the model reads:", message.content)
    print("code gets:", message.artifact["label"], [e["text"] for e in message.artifact["evidence"]])
    bad = tools["classify_intent"].invoke(
        {"type": "tool_call", "id": "call_2", "name": "classify_intent", "args": {"text": "hi", "k": 50}}
    )
    print(f"a bad argument ({bad.status}):", bad.content)
    print("known intents:", tools["list_intents"].invoke({}))
    toolkit.tools.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an existing workspace (default: a temporary one)")
    args = parser.parse_args()
    if args.home:
        main(args.home)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(quickstart_workspace(Path(tmp) / "kb"))
