"""Out-of-scope figures for the benchmark (``agent-il bench`` on data with oos splits, and
benchmarks/oos.py): the default head learns the intents in one go or task by task, is calibrated
exactly as a workspace is (agent_il.ood.calibration.calibrate_learn), and is measured on in-scope test queries
(a rejected one counts as wrong) and out-of-scope ones (recall), as in Larson et al. 2019. The oos
rows are only ever measured, never learned as a class."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from agent_il import strategies
from agent_il.bench.protocol import Split
from agent_il.config import DEFAULT_KEEP, DEFAULT_STRATEGY, SCORES, MemoryBudget, RejectionSettings
from agent_il.engine import step
from agent_il.memory.records import Records
from agent_il.ood.calibration import calibrate_learn
from agent_il.ood.scores import ClassStats, components, head_logits, score
from agent_il.state import Calibration

KEEP = DEFAULT_KEEP


def learn(splits: dict[str, tuple[np.ndarray, np.ndarray]], tasks: list[list[str]]) -> tuple:
    """The learner's path without Chroma: fit task by task, keep 20 herding exemplars a class,
    and return the head, the last task's rows, which of them became exemplars, and the memory."""
    x_all, y_all = splits["train"]
    train = Split(x_all, y_all)
    strategy = strategies.make(DEFAULT_STRATEGY)
    budget = MemoryBudget(per_class=20)
    memory: dict[str, list[str]] = {}
    seen: list[str] = []
    rows = exemplar = None
    for t, classes in enumerate(tasks, start=1):
        rows = np.flatnonzero(np.isin(y_all, classes))
        seen += classes
        index = {y: i for i, y in enumerate(seen)}
        learned = train.records(rows)
        step.fit(strategy, learned.x, learned.labels, index, Records.empty())
        current = train.records([int(i) for ids in memory.values() for i in ids])
        memory, chosen = step.plan_exemplars(budget, memory, current, learned, len(seen), t)
        exemplar = np.isin(np.arange(len(rows)), chosen)
    index = {y: i for i, y in enumerate(seen)}
    mem_rows = np.array([int(i) for ids in memory.values() for i in ids])
    stats = ClassStats.fit(x_all[mem_rows], np.array([index[v] for v in y_all[mem_rows]]), len(seen))
    y_last = np.array([index[v] for v in y_all[rows]])
    rest = np.array([int(i) for c, ids in memory.items() if c not in set(tasks[-1]) for i in ids], dtype=np.int64)
    others = None
    if len(rest):  # each class was learned whole, in one task: its size is its row count
        names, sizes = np.unique(y_all, return_counts=True)
        size = dict(zip(names.tolist(), sizes.astype(np.float64).tolist()))
        others = (x_all[rest], np.array([index[v] for v in y_all[rest]]), np.array([size[v] for v in y_all[rest]]))
    return strategy, index, stats, x_all[rows], y_last, exemplar, others


def scored(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], tasks: list[list[str]], names: tuple[str, ...] = SCORES
) -> tuple[np.ndarray, dict[str, tuple[Calibration, dict[str, np.ndarray]]]]:
    """The default head learned over ``tasks``: whether it labels each ``test`` row right, and
    for each score in ``names`` its calibration (the product's) and its values on every split."""
    parts = [s for s in ("test", "val", "oos_test") if s in splits]
    strategy, index, stats, x_last, y_last, exemplar, others = learn(splits, tasks)
    truth = np.array([index[v] for v in splits["test"][1]])
    logits = {s: head_logits(strategy, strategy.raw_scores(torch.from_numpy(splits[s][0]))) for s in parts}
    comps = {s: components(logits[s], splits[s][0], stats) for s in parts}
    out = {}
    for name in names:
        settings = RejectionSettings(score=name, keep=KEEP)
        cal = calibrate_learn(strategy, x_last, y_last, exemplar, stats, settings, others=others).calibration
        out[name] = (cal, {s: score(name, comps[s], cal.norm) for s in parts})
    return logits["test"].argmax(1).numpy() == truth, out


def measure(splits: dict[str, tuple[np.ndarray, np.ndarray]], tasks: list[list[str]]) -> dict[str, Any]:
    """In-scope accuracy, oos recall and in-scope keep on ``test`` / ``oos_test`` for every score,
    calibrated the product's way (``auto``) and, given a ``val`` split, at 95% keep of it (``val``)."""
    start = time.perf_counter()
    right, scores = scored(splits, tasks)
    out = {"closed_set_accuracy": 100.0 * float(right.mean()), "scores": {}}
    from sklearn.metrics import roc_auc_score

    for name, (cal, got) in scores.items():
        rules = [("auto", cal.threshold)]
        if "val" in got:
            rules.append(("val", float(np.quantile(got["val"], 1 - KEEP))))
        figures: dict[str, Any] = {}
        for rule, threshold in rules:
            kept = got["test"] >= threshold
            figures[rule] = {
                "threshold": threshold,
                "in_scope_accuracy": 100.0 * float((right & kept).mean()),
                "oos_recall": 100.0 * float((got["oos_test"] < threshold).mean()),
                "in_scope_keep": 100.0 * float(kept.mean()),
            }
        both = np.concatenate([got["test"], got["oos_test"]])
        is_in = np.r_[np.ones(len(got["test"])), np.zeros(len(got["oos_test"]))]
        figures["auroc"] = 100.0 * float(roc_auc_score(is_in, both))
        figures["calibrated_on"] = cal.source
        out["scores"][name] = figures
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out
