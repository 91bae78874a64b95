"""Confusable intents and conflicting labels: found at every learn (for the LearnReport) and on
demand (``agent-il intents confusions``)."""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from agent_il.memory.records import Records
from agent_il.ood.calibration import LearnCalibration
from agent_il.ood.evidence import stats_from
from agent_il.state import WorkspaceState
from agent_il.strategies.base import Strategy

CONFUSION_RATE = 0.2  # share of a class's rows scored as another class that earns a warning
MIN_ROWS = 3  # a rate needs at least this many rows of the class behind it
DUPLICATE_SIMILARITY = 0.95  # cosine above which two examples under different labels are near-duplicates
EVIDENCE = 3  # example pairs shown per warning


@functools.lru_cache(maxsize=1 << 16)  # every learn compares against the same stored texts
def normalise_text(text: str) -> str:
    return " ".join(text.casefold().split())


def at_learn(
    learned: LearnCalibration,
    train: Records,
    y_train: np.ndarray,
    labels: list[str],
    new: list[str],
    memory: Records,
    added: Records,
) -> list[dict[str, Any]]:
    """Pairs (new class, other class) that overlap: the new class's examples scored as the other
    one (leave-one-out for ridge), the other's scored as the new one, or near-duplicate examples."""
    if not new:
        return []
    rows = learned.rows
    truth = y_train[rows]
    predicted = learned.logits.argmax(1).numpy()
    n_rows = np.bincount(truth, minlength=len(labels))
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    new_idx = {labels.index(y) for y in new}

    def entry(a: str, b: str) -> dict[str, Any]:
        return pairs.setdefault(
            (a, b), {"new": a, "other": b, "rate": 0.0, "reverse_rate": 0.0, "examples": [], "near_duplicates": []}
        )

    for a in new_idx:
        if n_rows[a] < MIN_ROWS:
            continue
        wrong = np.bincount(predicted[(truth == a) & (predicted != a)], minlength=len(labels))
        for b in np.flatnonzero(wrong / n_rows[a] >= CONFUSION_RATE):
            e = entry(labels[a], labels[b])
            e["rate"] = round(float(wrong[b] / n_rows[a]), 3)
            mine = rows[(truth == a) & (predicted == b)][:EVIDENCE]
            e["examples"] = [train.texts[r] for r in mine]
    for b in range(len(labels)):
        if n_rows[b] < MIN_ROWS:
            continue
        stolen = np.bincount(predicted[(truth == b) & (predicted != b)], minlength=len(labels))
        for a in new_idx:
            if a != b and stolen[a] / n_rows[b] >= CONFUSION_RATE:
                e = entry(labels[a], labels[b])
                e["reverse_rate"] = round(float(stolen[a] / n_rows[b]), 3)
    # near-duplicates: this learn's examples of a new class against every kept exemplar of another label
    mine = [i for i, y in enumerate(train.labels) if y in set(new)]
    others = [r for r in (memory, added) if len(r.ids)]
    if mine and others:
        ex = np.concatenate([r.x for r in others])
        ex_labels = [y for r in others for y in r.labels]
        ex_texts = [t for r in others for t in r.texts]
        sims = train.x[mine] @ ex.T
        for k, i in enumerate(mine):
            for j in np.flatnonzero(sims[k] >= DUPLICATE_SIMILARITY):
                if ex_labels[j] == train.labels[i]:
                    continue
                e = entry(train.labels[i], ex_labels[j])
                if len(e["near_duplicates"]) < EVIDENCE:
                    similarity = round(float(sims[k, j]), 3)
                    pair = {"text": train.texts[i], "other_text": ex_texts[j], "similarity": similarity}
                    e["near_duplicates"].append(pair)
    found = [e for e in pairs.values() if e["rate"] or e["reverse_rate"] or e["near_duplicates"]]
    return sorted(found, key=lambda e: -(max(e["rate"], e["reverse_rate"]) + len(e["near_duplicates"])))


def conflicts(train: Records, test: Records, memory: Records, held: list[Records]) -> list[dict[str, Any]]:
    """The same text (case and spacing aside) under different labels: within this learn, or
    against a stored example. Reported, and learned as given (the report is the warning)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for recs in (train, test):
        for t, y in zip(recs.texts, recs.labels):
            if t is not None:
                seen[normalise_text(t)].add(y)
    stored: dict[str, set[str]] = defaultdict(set)
    for recs in (memory, *held):  # only the stored texts this learn has matter
        for t, y in zip(recs.texts, recs.labels):
            if t is not None and (n := normalise_text(t)) in seen:
                stored[n].add(y)
    out = []
    for text, ys in seen.items():
        if len(ys) > 1:
            out.append({"text": text, "labels": sorted(ys), "where": "this learn"})
        elif text in stored and stored[text] - ys:
            out.append({"text": text, "labels": sorted(ys | stored[text]), "where": "stored exemplars"})
    return out


def confusions(
    state: WorkspaceState, strategy: Strategy, exemplars: Records, holdout: Records, top: int = 10
) -> list[dict[str, Any]]:
    """The most confused pairs of the workspace: its ``exemplars`` (scored leave-one-out by the
    head where it can, as fitted otherwise) and ``holdout`` slices, each row counted against the
    intent the head gives it; the cosine between the two class means as a second piece of evidence."""
    labels = state.labels
    if not labels:
        return []
    index = {y: i for i, y in enumerate(labels)}
    parts = [exemplars, holdout]
    recs = [r for r in parts if len(r.ids)]
    x = np.concatenate([r.x for r in recs])
    texts = [t for r in recs for t in r.texts]
    truth = np.array([index[y] for r in recs for y in r.labels])
    n_ex = len(parts[0].ids)
    counts = {label: n for t in state.tasks for label, n in t.counts.items()}  # what each class last had
    sizes = torch.tensor([float(counts[labels[c]]) for c in truth[:n_ex]], dtype=torch.float64)
    loo = strategy.leave_one_out(torch.from_numpy(x[:n_ex]), torch.from_numpy(truth[:n_ex]), sizes)
    logits = strategy.logits(torch.from_numpy(x))
    if loo is not None:
        logits[:n_ex] = (loo / strategy.score_temperature).float()
    predicted = logits.argmax(1).numpy()
    stats = stats_from(exemplars, labels)
    pairs: dict[tuple[int, int], list[int]] = defaultdict(list)
    for r in np.flatnonzero(predicted != truth):
        pairs[(int(truth[r]), int(predicted[r]))].append(int(r))
    n_rows = np.bincount(truth, minlength=len(labels))
    out = []
    for (a, b), rows in pairs.items():
        cos = None
        if stats is not None and not np.isnan(stats.means[[a, b]]).any():
            ma, mb = stats.means[a], stats.means[b]
            cos = round(float(ma @ mb / (np.linalg.norm(ma) * np.linalg.norm(mb))), 3)
        out.append(
            {
                "label": labels[a],
                "confused_with": labels[b],
                "rate": round(float(len(rows) / n_rows[a]), 3),
                "count": len(rows),
                "rows": int(n_rows[a]),
                "prototype_similarity": cos,
                "examples": [texts[r] for r in rows[:EVIDENCE]],
            }
        )
    out.sort(key=lambda e: (-e["rate"], -(e["prototype_similarity"] or 0)))
    return out[:top]
