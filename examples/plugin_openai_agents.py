"""agent-il's tools in the OpenAI Agents SDK: an Agent with the function tools, run by the SDK's
Runner. By default a scripted model stands in for the LLM (no API key, no network) and asks for
the calls an LLM would make; `--model gpt-4.1-mini` uses the real API instead (needs OPENAI_API_KEY).

Run from the repository root (after `pip install -e plugins/openai_agents`):
    python examples/plugin_openai_agents.py              # on a temporary workspace from the quick-start data
    python examples/plugin_openai_agents.py --home ./kb  # on your own workspace (read-only: learning stays off)
"""

import argparse
import asyncio
import csv
import json
import os
import tempfile
from pathlib import Path

from agent_il_openai_agents import from_home
from agents import Agent, RunConfig, Runner, ToolCallOutputItem
from agents.testing import ScriptedModel, assistant_message, function_call

from agent_il import IntentLearner

DATA = Path(__file__).parent / "data" / "quickstart"
QUESTION = "why is my account blocked? and what time does my flight land?"


def quickstart_workspace(path: Path) -> Path:
    with IntentLearner.open(path) as learner:
        for task in ("banking", "travel"):
            with (DATA / f"{task}.csv").open(newline="") as f:
                rows = list(csv.DictReader(f))
            learner.learn([r["text"] for r in rows], [r["intent"] for r in rows], task=task, holdout=0.2)
    return path


async def main(home: Path, model_name: str | None) -> None:
    scripted = ScriptedModel(
        [
            [
                function_call("classify_intent", {"text": "why is my account blocked", "k": 2}, call_id="c1"),
                function_call("classify_intent", {"text": "what time does my flight land", "k": 2}, call_id="c2"),
            ],
            [assistant_message("Two requests: account_blocked, then flight_status.")],
        ]
    )
    agent = Agent(
        name="support router",
        instructions="Classify each request in the user's message with classify_intent, then name the intents.",
        model=model_name or scripted,
        tools=from_home(home),  # learning is off unless allow_learning=True
    )
    result = await Runner.run(agent, QUESTION, run_config=RunConfig(tracing_disabled=model_name is None))
    for item in result.new_items:
        if isinstance(item, ToolCallOutputItem):
            out = json.loads(item.output)  # the full result, as JSON; the model reads the same
            print(f"tool output: {out['label']} ({out['confidence']:.2f}), evidence {out['evidence'][0]['text']!r}")
    print("agent:", result.final_output)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an existing workspace (default: a temporary one)")
    parser.add_argument("--model", help="a real OpenAI model name (default: a scripted stand-in, offline)")
    args = parser.parse_args()
    if args.model is None:
        os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
    if args.home:
        asyncio.run(main(args.home, args.model))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(quickstart_workspace(Path(tmp) / "kb"), args.model))
