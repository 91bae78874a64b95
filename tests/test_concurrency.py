"""Predicts beside a learn, in process: ``apredict`` / ``alearn`` and the tool surface's ``acall``
run on worker threads; a predict reads the last committed generation and never waits for the learn."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_il import IntentLearner
from agent_il.tools.surface import IntentTools


@pytest.fixture(scope="module")
def learner(learned_seed: Path, tmp_path_factory: pytest.TempPathFactory, tool_encoder) -> Iterator[IntentLearner]:
    home = shutil.copytree(learned_seed, tmp_path_factory.mktemp("concurrency") / "kb")
    with IntentLearner.open(home, encoder=tool_encoder) as opened:
        yield opened


def test_apredict_answers_while_alearn_runs(learner: IntentLearner) -> None:
    texts = [f"please book table number {i} at the bistro" for i in range(80)]
    before = learner.state.generation

    async def main() -> tuple[list[tuple[float, str, int]], float]:
        learning = asyncio.create_task(learner.alearn(texts, ["book_table"] * len(texts), task="tables"))
        answers = []
        while not learning.done():
            p = (await learner.apredict(["i need to pay my water bill"], inbox=False))[0]
            answers.append((time.perf_counter(), p.label, len(p.top_k)))
        await learning
        return answers, time.perf_counter()

    answers, finished = asyncio.run(main())
    assert len(answers) >= 2 and all(label == "pay_bill" for _, label, _ in answers)
    assert sum(t < finished for t, _, _ in answers) >= 2  # answered while the learn ran
    assert learner.state.generation == before + 1 and "book_table" in learner.labels


def test_the_surface_async_call_refuses_as_the_sync_one(learner: IntentLearner) -> None:
    tools = IntentTools(learner)

    async def main() -> None:
        out = await tools.acall("classify_intent", {"text": "i need to pay my water bill"})
        assert out.label == "pay_bill"  # type: ignore[attr-defined]
        from agent_il.errors import ToolError

        with pytest.raises(ToolError, match="learning is disabled"):
            await tools.acall("learn_intent", {"label": "x", "examples": ["a", "b", "c"]})

    asyncio.run(main())
