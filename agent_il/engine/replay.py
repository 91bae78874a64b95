"""A workspace's learns learned again, in order, on other vectors of the same examples: what a
migration to another encoder computes. No I/O: the caller gives the records (with their new
vectors) and commits the result once.

Replaying, not refitting the head alone, is what makes the result the workspace that learning
the same learns with the new encoder would have made: the ridge head is the same either way, but
the exemplars (herding), the rejection calibration and the accuracy matrix depend on each learn's
vectors and order."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from agent_il import strategies
from agent_il.config import WorkspaceConfig
from agent_il.engine import step
from agent_il.memory.records import Records
from agent_il.state import WorkspaceState, now
from agent_il.strategies.base import Strategy


@dataclass
class Replay:
    state: WorkspaceState
    strategy: Strategy
    train: Records  # every example, new vector and weight
    test: Records  # every held-out record
    skipped: list[int]  # tasks with no example left to learn (their held-out slices go too)
    checks: dict[str, Any]  # the last learn's calibration, confusions and conflicts


def replay(
    old: WorkspaceState,
    config: WorkspaceConfig,
    space: str,
    examples: Records,
    held: Records,
    tuned_through: int | None = None,
) -> Replay:
    """``old``'s learns again under ``config`` on ``examples`` and ``held`` (every example and
    held-out record ``old`` names, with their new vectors), each task with the examples and the
    held-out slice it has now, in the order it learned them. The state keeps ``old``'s creation,
    generation and learn times, names ``space``, and ``tuned_through`` (the newest task whose
    examples the new encoder was fine-tuned on)."""
    state = replace(
        WorkspaceState.new(config),
        created=old.created,
        generation=old.generation,
        space=space,
        tuned_through=tuned_through,
    )
    head = strategies.make(config.strategy, config.strategy_config)
    at_example = {i: r for r, i in enumerate(examples.ids)}
    at_held = {i: r for r, i in enumerate(held.ids)}
    memory, seen = Records.empty(examples.x.shape[1]), Records.empty(examples.x.shape[1])
    trains: list[Records] = []
    tests: list[Records] = []
    skipped: list[int] = []
    checks: dict[str, Any] = {}
    last = max((t.id for t in old.tasks if any((old.examples or {}).get(str(t.id), {}).values())), default=None)
    for task in old.tasks:
        ids = [i for ids in (old.examples or {}).get(str(task.id), {}).values() for i in ids]
        train = step.in_learn_order(examples.take([at_example[i] for i in ids]))
        test = step.in_learn_order(held.take([at_held[i] for i in old.holdout.get(str(task.id), [])]))
        if not train.ids:
            skipped.append(task.id)
            continue
        started = time.perf_counter()
        done = step.learn(state, head, train, memory, seen, 0.0, started, started, test=test, recheck=task.id == last)
        pool = Records.concat([memory, done.added])
        row = {i: r for r, i in enumerate(pool.ids)}
        memory = pool.take([row[i] for i in done.state.live("exemplars")])
        seen = Records.concat([seen, done.test])
        state, head, checks = done.state, done.strategy, done.checks
        state.tasks[-1] = replace(state.tasks[-1], time=task.time, seconds=task.seconds)
        trains.append(done.train)
        tests.append(done.test)
    state.updated = now()
    return Replay(state, head, Records.concat(trains), Records.concat(tests), skipped, checks)
