"""The learn step on vectors, with no I/O: the learner runs it inside a transaction, and both
benchmarks run its parts on cached embeddings, so all three learn the same way.

A step computes on copies (the state, the head) and returns everything the commit needs; the
caller's state and head are untouched until it commits."""

from __future__ import annotations

import copy
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agent_il.config import MemoryBudget
from agent_il.engine.metrics import correct
from agent_il.memory import budget as budgeting
from agent_il.memory.records import Records
from agent_il.ood import diagnostics
from agent_il.ood.calibration import calibrate_learn, runs
from agent_il.ood.scores import ClassStats, head_logits
from agent_il.results import LearnReport, Task
from agent_il.state import WorkspaceState, now
from agent_il.strategies.base import Strategy
from agent_il.strategies.ridge import balance_weight


def batch(
    x: np.ndarray, labels: list[str], texts: list[str] | None, task: str | None, task_id: int, source: str = "texts"
) -> Records:
    """The records of one learn (fresh ids; label, task, time, where they came from and their
    row in the learn in their metadata: the row orders the learn when it is refitted)."""
    meta = {"task": task or f"task-{task_id}", "task_id": task_id, "time": time.time(), "source": source}
    return Records(
        [uuid.uuid4().hex[:16] for _ in labels],
        x,
        list(texts) if texts is not None else [None] * len(labels),
        [{"label": y, **meta, "row": r} for r, y in enumerate(labels)],
    )


def in_learn_order(recs: Records) -> Records:
    """``recs`` in the order their learn had them (their ``row``)."""
    return recs.take(sorted(range(len(recs.ids)), key=lambda r: int(recs.metadatas[r].get("row", r))))


def weighed(train: Records) -> Records:
    """``train`` with each example's weight in the head in its metadata."""
    counts = Counter(train.labels)
    metas = [{**m, "weight": balance_weight(counts[y])} for m, y in zip(train.metadatas, train.labels)]
    return Records(train.ids, train.x, train.texts, metas)


def fit(strategy: Strategy, x: np.ndarray, labels: list[str], index: dict[str, int], memory: Records) -> None:
    """Fit one task in place; ``memory`` (the exemplars so far) is replayed by rules that replay."""
    replay = None
    if memory.ids:
        replay = (torch.from_numpy(memory.x), torch.tensor([index[y] for y in memory.labels]))
    strategy.fit(torch.from_numpy(x), torch.tensor([index[y] for y in labels]), len(index), replay)


def plan_exemplars(
    budget: MemoryBudget,
    current: dict[str, list[str]],
    memory: Records,
    train: Records,
    n_classes: int,
    task_id: int,
) -> tuple[dict[str, list[str]], list[int]]:
    """The exemplar ids every label keeps after this learn, and which rows of ``train`` joined
    them (``memory`` holds the current exemplars' records)."""
    row = {i: r for r, i in enumerate(memory.ids)}
    current_x = {y: memory.x[[row[i] for i in ids]] for y, ids in current.items() if ids}
    plan = budgeting.plan(budget, current, current_x, train.x, train.labels, n_classes, task_id)
    chosen = [ref for refs in plan.values() for ref in refs if isinstance(ref, int)]
    return {y: [train.ids[r] if isinstance(r, int) else r for r in refs] for y, refs in plan.items()}, chosen


def split_holdout(batch: Records, fraction: float, seed: int) -> tuple[Records, Records]:
    """Stratified split: that fraction of each class (at least one, never all) is held out, a
    block of its rows in the learn's order at an offset drawn per class (a class's slice does not
    depend on which other classes the learn has). A block, not a random draw: examples are written
    in batches of one author's paraphrases, and a random slice keeps a near-twin of each held-out
    row in the fit (and, after ``consolidate``, in the encoder), so it measures, and calibrates the
    threshold, as if every query had been written by one of the authors."""
    if fraction == 0:
        return batch, batch.take([])
    by_label: dict[str, list[int]] = {}
    for i, y in enumerate(batch.labels):
        by_label.setdefault(y, []).append(i)
    test: list[int] = []
    for label, rows in by_label.items():
        rng = np.random.default_rng([seed, 7, zlib.crc32(label.encode("utf-8"))])
        if len(rows) >= 2:
            k = min(len(rows) - 1, max(1, round(fraction * len(rows))))
            start = int(rng.integers(0, len(rows) - k + 1))
            test += rows[start : start + k]
    held = set(test)
    return batch.take([i for i in range(len(batch.ids)) if i not in held]), batch.take(sorted(held))


def holdout_accuracy(
    old: WorkspaceState, state: WorkspaceState, old_head: Strategy, both: Records, logits: torch.Tensor | None
) -> dict[int, dict[str, float | None]]:
    """Accuracy on every task's held-out slice (``both``, in ``state.holdout`` order, scored by
    the new head as ``logits``) before (``old_head``) and after this learn. "Before" is what the
    learn that made the old head measured as its "after", when it is on record."""
    last = old.evaluation[-1] if old.evaluation else None
    on_record = last["accuracy"] if last and old.tasks and last["after_task"] == old.tasks[-1].id else {}
    right = np.zeros(0, dtype=bool) if logits is None else correct(logits, state.labels, both)
    out: dict[int, dict[str, float | None]] = {}
    start = 0
    for key, ids in state.holdout.items():
        rows = range(start, start + len(ids))
        start += len(ids)
        before = None
        if key in old.holdout and old.labels:
            before = on_record.get(key)
            if before is None:
                recs = both.take(rows)
                before = 100.0 * float(correct(old_head.logits(torch.from_numpy(recs.x)), old.labels, recs).mean())
        out[int(key)] = {"before": before, "after": 100.0 * float(right[rows.start : rows.stop].mean())}
    return out


@dataclass
class Step:
    """A computed learn, ready to commit."""

    state: WorkspaceState
    strategy: Strategy
    task: Task
    train: Records
    test: Records
    added: Records  # new exemplar records
    accuracy: dict[int, dict[str, float | None]]
    checks: dict[str, Any]  # the LearnReport's calibration, confusions, conflicts
    stats: ClassStats | None = None  # of the new exemplars, in the new label order
    timings: dict[str, float] = field(default_factory=dict)

    def report(
        self, old: WorkspaceState, snapshot: str | None, seconds: float, timings: dict[str, float]
    ) -> LearnReport:
        names = {t.id: t.name for t in self.state.tasks}
        return LearnReport(
            task=self.task,
            new_classes=self.task.new_classes,
            updated_classes=[y for y in self.task.classes if y in old.labels],
            examples=len(self.train.ids),
            classes_total=len(self.state.labels),
            exemplars_total=len(self.state.live("exemplars")),
            seconds=seconds,
            holdout_examples=len(self.test.ids),
            holdout_accuracy=[{"task": t, "name": names[t], **a} for t, a in self.accuracy.items()],
            snapshot=snapshot,
            **self.checks,
            timings=timings,
        )


def learn(
    old: WorkspaceState,
    head: Strategy,
    batch: Records,
    memory: Records,
    held: Records,
    holdout: float,
    start: float,
    encoded: float,
    memory_stats: ClassStats | None = None,
    test: Records | None = None,
    recheck: bool = True,
) -> Step:
    """Learn ``batch`` (one task: new records with label, task and time metadata) on top of
    ``old`` and its ``head``, with the committed exemplars ``memory`` (and their class statistics
    under ``old.labels`` if the caller has them) and held-out slices ``held``. ``start`` and
    ``encoded``: when the learn began and its encoding ended (``perf_counter``); the fit is timed
    from ``encoded``, so it includes reading the committed records. ``test``: the task's held-out
    slice as it was drawn before (a replay), ``batch`` then being the rest. Without ``recheck``
    (a replay's learns before its last), the rejection threshold is not fitted again and nothing
    is looked for: each learn fits them anew, so only the last one's are kept."""
    state = old.copy()
    task_id = int(batch.metadatas[0]["task_id"])
    state.dim = state.dim or int(batch.x.shape[1])
    train, test = (batch, test) if test is not None else split_holdout(batch, holdout, seed=task_id)
    every = batch if test is None else in_learn_order(Records.concat([train, test]))
    train = weighed(train)
    seen = list(dict.fromkeys(every.labels))
    new_classes = [y for y in seen if y not in old.labels]
    state.labels += new_classes
    index = {y: i for i, y in enumerate(state.labels)}
    strategy = copy.deepcopy(head)
    fit(strategy, train.x, train.labels, index, memory)
    fitted = time.perf_counter()

    state.exemplars, chosen = plan_exemplars(old.config.memory, old.exemplars, memory, train, len(index), task_id)
    added = train.take(chosen)
    if test.ids:
        state.holdout[str(task_id)] = test.ids
    if state.examples is not None:  # None: a workspace from before every example was kept
        by_label: dict[str, list[str]] = {}
        for i, y in zip(train.ids, train.labels):
            by_label.setdefault(y, []).append(i)
        state.examples[str(task_id)] = by_label
    both = Records.concat([held, test])  # every held-out slice, in state.holdout order
    held_logits = head_logits(strategy, strategy.recurring_scores(torch.from_numpy(both.x))) if both.ids else None
    accuracy = holdout_accuracy(old, state, head, both, held_logits)
    if test.ids or accuracy:
        state.evaluation.append({"after_task": task_id, "accuracy": {str(t): a["after"] for t, a in accuracy.items()}})
    name = str(batch.metadatas[0]["task"])
    counts = dict(Counter(every.labels))
    task = Task(task_id, name, seen, new_classes, counts, len(every.ids), now(), round(time.perf_counter() - start, 4))
    state.tasks.append(task)
    state.updated = task.time
    checks: dict[str, Any] = {}
    stats = None
    if recheck:
        # each class's rows cut into runs in the learn's order, the held-out ones among them
        run = dict(zip(every.ids, runs(np.array([index[y] for y in every.labels], dtype=np.int64))))
        mine, theirs = [run[i] for i in train.ids], [-1] * len(held.ids) + [run[i] for i in test.ids]
        of = (np.array(mine, dtype=np.int64), np.array(theirs, dtype=np.int64))
        checks, stats = at_learn(
            old, state, strategy, train, memory, added, [held, test], task_id, held_logits, memory_stats, of
        )
    planned = time.perf_counter()
    timings = {"fit": round(fitted - encoded, 4), "memory": round(planned - fitted, 4)}
    return Step(state, strategy, task, train, test, added, accuracy, checks, stats, timings)


def at_learn(
    old: WorkspaceState,
    state: WorkspaceState,
    strategy: Strategy,
    train: Records,
    memory: Records,
    added: Records,
    held: list[Records],
    task_id: int,
    held_logits: torch.Tensor | None = None,
    memory_stats: ClassStats | None = None,
    learn_runs: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, Any], ClassStats | None]:
    """Recalibrate the threshold (into ``state.calibration``) and look for confusable intents and
    conflicting labels. Returns the LearnReport's ``calibration``, ``confusions``, ``conflicts``,
    and the class statistics of the new exemplars (from ``memory_stats``, those of ``memory``
    under ``old.labels``, plus the rows that changed, when given). ``learn_runs``: the run of each
    row of ``train`` and of ``held`` (see :func:`calibrate_learn`)."""
    labels = state.labels
    index = {y: i for i, y in enumerate(labels)}
    both = Records.concat([memory, added])
    pool = {i: r for r, i in enumerate(both.ids)}
    live = state.live("exemplars")
    rows = [pool[i] for i in live]
    ex_x = both.x[rows] if rows else None
    ex_labels = [both.labels[r] for r in rows]
    stats = None
    if ex_x is not None and memory_stats is not None and old.labels == labels[: len(old.labels)]:
        kept = set(live)
        dropped = memory.take([r for r, i in enumerate(memory.ids) if i not in kept])
        stats = memory_stats.updated(
            (added.x, np.array([index[y] for y in added.labels], dtype=np.int64)),
            (dropped.x, np.array([index[y] for y in dropped.labels], dtype=np.int64)),
            len(labels),
        )
    elif ex_x is not None:
        stats = ClassStats.fit(ex_x, np.array([index[y] for y in ex_labels]), len(labels))
    y_train = np.array([index[y] for y in train.labels])
    held_x = np.concatenate([r.x for r in held if len(r.ids)]) if any(len(r.ids) for r in held) else None
    touched = set(train.labels)
    others = None
    rest = [k for k, y in enumerate(ex_labels) if y not in touched]
    tuned = state.tuned_through
    if tuned is not None:  # the encoder was fine-tuned on those: they score like familiar rows
        rest = [k for k in rest if int(both.metadatas[rows[k]].get("task_id", 0)) > tuned]
    if ex_x is not None and rest:
        at = {i: n for n, i in enumerate(state.live("examples"))}  # in the order they were learned (runs)
        rest.sort(key=lambda k: at.get(both.ids[rows[k]], len(at)))
        # Each exemplar's weight in the head is that of its class's training rows in its own learn
        # (held-out rows aside): its leave-one-out scores need that size.
        last = {y: n for t in state.tasks for y, n in t.counts.items()}  # workspaces without examples
        sizes = {(t, y): len(ids) for t, by_label in (state.examples or {}).items() for y, ids in by_label.items()}
        metas = [both.metadatas[rows[k]] for k in rest]
        counts = np.array(
            [sizes.get((str(m.get("task_id")), ex_labels[k]), last[ex_labels[k]]) for m, k in zip(metas, rest)],
            dtype=np.float64,
        )
        others = (ex_x[rest], np.array([index[ex_labels[k]] for k in rest]), counts)
    learned = calibrate_learn(
        strategy,
        train.x,
        y_train,
        np.isin(train.ids, added.ids),
        stats,
        old.config.rejection,
        held_x=held_x,
        held_logits=held_logits,
        others=others,
        seed=task_id,
        encoder_saw=tuned is not None and task_id <= tuned,
        learn_runs=learn_runs,
    )
    state.calibration = learned.calibration
    new = [y for y in labels if y not in old.labels]
    confusions = diagnostics.at_learn(learned, train, y_train, labels, new, memory, added)
    conflicts = diagnostics.conflicts(train, held[-1] if held else Records.empty(), memory, held[:-1])
    cal = state.rejection_json() or {}
    report = {k: cal[k] for k in ("score", "keep", "threshold", "source", "rows", "mode")}
    return {"calibration": report, "confusions": confusions, "conflicts": conflicts}, stats
