"""Predicts beside a learn, in process: ``apredict`` / ``alearn`` and the tool surface's ``acall``
run on worker threads; a predict reads the last committed generation and never waits for the learn."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from agent_il import IntentLearner
from agent_il.tools.surface import IntentTools


@pytest.fixture(scope="module")
def learner(learned_seed: Path, tmp_path_factory: pytest.TempPathFactory, tool_encoder) -> Iterator[IntentLearner]:
    home = shutil.copytree(learned_seed, tmp_path_factory.mktemp("concurrency") / "kb")
    with IntentLearner.open(home, encoder=tool_encoder) as opened:
        yield opened


POOL = min(32, (os.cpu_count() or 1) + 4)  # the threads of asyncio's default executor
PAY = "i need to pay my water bill"


async def _answered_fast(call: Callable[[], Awaitable[object]], times: int = 5) -> None:
    """``call`` started and finished ``times`` times, each within 2 s (it must not queue behind writes)."""
    for _ in range(times):
        start = time.perf_counter()
        await asyncio.wait_for(call(), 10)
        assert time.perf_counter() - start < 2


def test_predicts_start_and_finish_while_more_writes_than_threads_queue(learner: IntentLearner) -> None:
    wrote: list[int] = []

    async def main() -> None:
        with learner.writing:  # as a long learn would
            writes = [asyncio.create_task(learner.awrite(wrote.append, i)) for i in range(POOL + 2)]
            await asyncio.sleep(0.2)  # they queue
            await _answered_fast(lambda: learner.apredict([PAY], inbox=False))
            assert not wrote  # every write still waits
        await asyncio.gather(*writes)
        assert wrote == list(range(POOL + 2))  # then they ran, one at a time, in turn

    asyncio.run(main())


def test_the_surface_classifies_while_more_corrections_than_threads_queue(learner: IntentLearner) -> None:
    tools = IntentTools(learner)  # learning off: a correction is a write that queues it for review

    async def main() -> None:
        with learner.writing:
            writes = [
                asyncio.create_task(tools.acall("correct_intent", {"text": f"pay it {i}", "label": "pay_bill"}))
                for i in range(POOL + 2)
            ]
            await asyncio.sleep(0.2)
            await _answered_fast(lambda: tools.acall("classify_intent", {"text": PAY}))
            assert not any(w.done() for w in writes)
        assert {r.status for r in await asyncio.gather(*writes)} == {"queued"}  # type: ignore[attr-defined]

    asyncio.run(main())


def test_apredict_answers_while_alearn_runs(learner: IntentLearner) -> None:
    texts = [f"please book table number {i} at the bistro" for i in range(80)]
    before = learner.state.generation

    def learn() -> float:
        learner.learn(texts, ["book_table"] * len(texts), task="tables")
        return time.perf_counter()  # when the learn committed, taken in its own thread

    async def main() -> tuple[list[tuple[float, str]], float]:
        learning = asyncio.create_task(learner.awrite(learn))
        answers = []
        while not learning.done():
            p = (await learner.apredict([PAY], inbox=False))[0]
            answers.append((time.perf_counter(), p.label))
        return answers, await learning

    answers, committed = asyncio.run(main())
    assert all(label == "pay_bill" for _, label in answers)
    assert sum(t < committed for t, _ in answers) >= 2  # answered before the learn committed
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
