"""The class-incremental benchmark: classes split into T equal tasks in a seeded order, learned
one task at a time by each strategy; after each task every seen class's test examples are
classified with no task id. Same strategies and the same exemplar budget code as the product,
run in process on cached embeddings, so the figures measure the learning rule, not I/O.

``joint`` (retrain a fresh head on all data seen so far) is the reference; ``naive`` the floor.
"""

from __future__ import annotations

import resource
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import mean, pstdev
from typing import Any, Protocol

import numpy as np
import torch

from agent_il import strategies
from agent_il.bench.baselines import BASELINES
from agent_il.config import DEFAULT_STRATEGY, MemoryBudget
from agent_il.engine import step
from agent_il.engine.metrics import AccuracyMatrix
from agent_il.errors import InvalidInputError
from agent_il.memory.records import Records
from agent_il.strategies.neural import NeuralStrategy

REFERENCE = "joint"


@dataclass(frozen=True)
class Split:
    x: np.ndarray
    labels: np.ndarray  # of str
    texts: np.ndarray | None = None  # of str: what consolidation fine-tunes on and encodes again

    def __post_init__(self) -> None:
        if len(self.x) != len(self.labels) or len(self.x) == 0:
            raise InvalidInputError("a benchmark split needs as many labels as vectors, and at least one")

    def take(self, rows: Sequence[int] | np.ndarray) -> Split:
        return Split(self.x[rows], self.labels[rows], None if self.texts is None else self.texts[rows])

    def records(self, rows: Sequence[int]) -> Records:
        """Rows of the split as the learn step takes them (ids: their row numbers)."""
        rows = list(rows)
        labels = self.labels[rows].tolist() if rows else []
        x = self.x[rows] if rows else np.zeros((0, self.x.shape[1]), dtype=self.x.dtype)
        return Records([str(r) for r in rows], x, [None] * len(rows), [{"label": y} for y in labels])


@dataclass
class Run:
    """One strategy, one seed."""

    matrix: AccuracyMatrix
    accuracy_per_step: list[float]  # on all test examples of the classes seen so far
    learn_seconds: list[float]  # head update (and memory selection) per task
    state_bytes: int
    consolidation_seconds: list[float] = field(default_factory=list)  # each consolidation's, in order


class Consolidate(Protocol):
    """Consolidation inside the protocol (agent_il.bench.consolidating): the encoder fine-tuned
    on ``rows`` of ``train``, and ``train`` and ``test`` encoded again by it, with its seconds."""

    every: int

    def __call__(self, train: Split, rows: np.ndarray, test: Split, seed: int) -> tuple[Split, Split, float]: ...


@dataclass
class BenchResult:
    protocol: dict[str, Any]
    runs: dict[str, list[Run]] = field(default_factory=dict)
    default: str = DEFAULT_STRATEGY

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, runs in self.runs.items():
            figures = {
                "final_accuracy": [r.accuracy_per_step[-1] for r in runs],
                "average_incremental_accuracy": [mean(r.accuracy_per_step) for r in runs],
                "forgetting": [r.matrix.forgetting() for r in runs],
                "backward_transfer": [r.matrix.backward_transfer() for r in runs],
                "learn_seconds_per_task": [mean(r.learn_seconds) for r in runs],
                "learn_seconds_max": [max(r.learn_seconds) for r in runs],
                "learn_seconds_total": [sum(r.learn_seconds) for r in runs],
                "consolidation_seconds_total": [sum(r.consolidation_seconds) for r in runs],
                "consolidations": [len(r.consolidation_seconds) for r in runs],
            }
            out[name] = {k: _mean_std(v) for k, v in figures.items()}
            out[name]["state_bytes"] = max(r.state_bytes for r in runs)
            steps = zip(*(r.accuracy_per_step for r in runs))
            out[name]["accuracy_per_step"] = [float(mean(step)) for step in steps]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "default": self.default,
            "best": max(
                (n for n in self.runs if n != REFERENCE and n not in BASELINES),
                key=lambda n: mean(r.accuracy_per_step[-1] for r in self.runs[n]),
            ),
            "strategies": self.summary(),
            "matrices": {n: [r.matrix.grid() for r in runs] for n, runs in self.runs.items()},
            "peak_rss_bytes": peak_rss_bytes(),
        }


def _mean_std(values: list[float | None]) -> dict[str, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None}
    return {"mean": float(mean(vals)), "std": float(pstdev(vals))}


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def default_task_count(n_classes: int) -> int:
    """The most tasks that still give every task at least 10 classes, in equal sizes
    (CLINC150: 15 x 10, BANKING77: 7 x 11); else about 10 classes a task."""
    for t in range(n_classes // 10, 0, -1):
        if n_classes % t == 0:
            return t
    return max(1, n_classes // 10)


def task_order(labels: np.ndarray, n_tasks: int, seed: int) -> list[list[str]]:
    classes = sorted(set(labels.tolist()))
    if not 1 <= n_tasks <= len(classes):
        raise InvalidInputError(f"--tasks must be between 1 and the number of classes ({len(classes)})")
    order = np.random.default_rng(seed).permutation(classes)
    return [list(chunk) for chunk in np.array_split(order, n_tasks)]


class _Joint(NeuralStrategy):
    """Reference: a fresh head trained on every example seen so far, at every task."""

    name = REFERENCE

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._x: list[torch.Tensor] = []
        self._y: list[torch.Tensor] = []

    def fit(self, x: torch.Tensor, y: torch.Tensor, n_classes: int, replay: Any) -> None:
        self._x.append(x)
        self._y.append(y)
        self.head = None
        super().fit(torch.cat(self._x), torch.cat(self._y), n_classes, None)


def make_strategy(name: str) -> strategies.Strategy:
    if name in BASELINES:
        return BASELINES[name]()
    return _Joint() if name == REFERENCE else strategies.make(name)


def few_shot(train: Split, shots: int, seed: int) -> Split:
    """``shots`` training examples of every class (all of a class that has fewer), drawn per seed
    and per class, so a class's draw does not depend on which others the data set has."""
    keep: list[int] = []
    for label in sorted(set(train.labels.tolist())):
        rows = np.flatnonzero(train.labels == label)
        rng = np.random.default_rng([seed, 17, zlib.crc32(label.encode("utf-8"))])
        keep += sorted(rng.permutation(rows)[:shots].tolist())
    keep.sort()
    return train.take(keep)


def run_one(
    name: str,
    train: Split,
    test: Split,
    tasks: list[list[str]],
    budget: MemoryBudget,
    on_task: Callable[[], None] | None = None,
    consolidate: Consolidate | None = None,
    seed: int = 0,
) -> Run:
    """``name`` learns ``tasks`` one by one; with ``consolidate``, after every ``every`` tasks and
    after the last, the encoder is fine-tuned on the rows seen so far and a fresh strategy learns
    those tasks again on the new vectors, as ``agent-il consolidate`` does in a workspace."""
    strategy = make_strategy(name)
    memory_ids: dict[str, list[str]] = {}
    rows: list[tuple[int, dict[int, float]]] = []
    per_step: list[float] = []
    seconds: list[float] = []
    consolidations: list[float] = []
    task_of_test = np.full(len(test.labels), -1)
    for t, classes in enumerate(tasks, start=1):
        task_of_test[np.isin(test.labels, classes)] = t

    def learn(t: int) -> dict[str, int]:
        nonlocal memory_ids
        index = {y: i for i, y in enumerate(c for task in tasks[:t] for c in task)}
        learned = train.records(np.flatnonzero(np.isin(train.labels, tasks[t - 1])))
        memory = train.records([int(i) for ids in memory_ids.values() for i in ids])
        step.fit(strategy, learned.x, learned.labels, index, memory)
        if strategy.uses_replay:
            memory_ids, _ = step.plan_exemplars(budget, memory_ids, memory, learned, len(index), t)
        return index

    for t in range(1, len(tasks) + 1):
        start = time.perf_counter()
        index = learn(t)
        seconds.append(time.perf_counter() - start)
        if consolidate is not None and (t % consolidate.every == 0 or t == len(tasks)):
            seen = np.flatnonzero(np.isin(train.labels, list(index)))
            train, test, spent = consolidate(train, seen, test, seed)
            consolidations.append(spent)
            strategy, memory_ids = make_strategy(name), {}
            for u in range(1, t + 1):
                learn(u)
        mask = (task_of_test > 0) & (task_of_test <= t)
        predicted = strategy.logits(torch.from_numpy(test.x[mask])).argmax(1).numpy()
        truth = np.array([index[v] for v in test.labels[mask]])
        hits = predicted == truth
        per_step.append(100.0 * float(hits.mean()))
        tasks_here = task_of_test[mask]
        rows.append((t, {j: 100.0 * float(hits[tasks_here == j].mean()) for j in range(1, t + 1)}))
        if on_task:
            on_task()
    state_bytes = sum(v.numel() * v.element_size() for v in strategy.tensors().values())
    if strategy.uses_replay:
        state_bytes += sum(len(ids) for ids in memory_ids.values()) * train.x.shape[1] * 4
    matrix = AccuracyMatrix(list(range(1, len(tasks) + 1)), rows)
    return Run(matrix, per_step, seconds, state_bytes, consolidations)


def run(
    train: Split,
    test: Split,
    *,
    names: list[str],
    n_tasks: int,
    seeds: list[int],
    memory_per_class: int = 20,
    limit_tasks: int | None = None,
    on_task: Callable[[], None] | None = None,
    shots: int | None = None,
    consolidate: Consolidate | None = None,
) -> BenchResult:
    """Every strategy in ``names`` on every seed; ``limit_tasks`` stops after that many tasks;
    ``shots``: that many training examples an intent (:func:`few_shot`, drawn per seed);
    ``consolidate``: the encoder learns too (:func:`run_one`)."""
    unknown = [n for n in names if n not in strategies.REGISTRY and n != REFERENCE and n not in BASELINES]
    if unknown:
        choices = ", ".join([*strategies.REGISTRY, REFERENCE, *BASELINES])
        raise InvalidInputError(f"unknown strategies {', '.join(unknown)}; choose from {choices}")
    missing = sorted(set(test.labels.tolist()) - set(train.labels.tolist()))
    if missing:
        raise InvalidInputError(f"the test set has labels the training set lacks: {', '.join(missing[:5])}")
    budget = MemoryBudget(per_class=memory_per_class)
    result = BenchResult(
        protocol={
            "tasks": n_tasks,
            "tasks_run": limit_tasks or n_tasks,
            "seeds": seeds,
            "memory_per_class": memory_per_class,
            "classes": len(set(train.labels.tolist())),
            "train_examples": len(train.labels) if shots is None else len(few_shot(train, shots, seeds[0]).labels),
            "test_examples": len(test.labels),
            "shots": shots,
            "consolidate_every": consolidate.every if consolidate else None,
        }
    )
    torch.manual_seed(0)
    for name in names:
        result.runs[name] = []
        for seed in seeds:
            tasks = task_order(train.labels, n_tasks, seed)[:limit_tasks]
            learned = train if shots is None else few_shot(train, shots, seed)
            result.runs[name].append(run_one(name, learned, test, tasks, budget, on_task, consolidate, seed))
    return result
