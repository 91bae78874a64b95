"""What the learner knows it does not know: the rejection threshold (calibrated at every learn),
confusable intents and conflicting labels found at learn time, and the inbox of rejected inputs.

Kept apart from :mod:`agent_il.learner` so the facade only calls in: ``at_learn`` inside a learn's
transaction (its results go into the committed state and the LearnReport), ``reject`` at predict.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from agent_il import ood
from agent_il.memory import Evidence, Records, RecordStore
from agent_il.strategies.base import Strategy
from agent_il.strategies.ridge import _REFERENCE_COUNT

if TYPE_CHECKING:
    from agent_il.learner import IntentLearner

CONFUSION_RATE = 0.2  # share of a class's rows scored as another class that earns a warning
MIN_ROWS = 3  # a rate needs at least this many rows of the class behind it
DUPLICATE_SIMILARITY = 0.95  # cosine above which two examples under different labels are near-duplicates
EVIDENCE = 3  # example pairs shown per warning


def _live(state: dict[str, Any], store: str) -> list[str]:
    return [i for ids in state[store].values() for i in ids]


def normalise_text(text: str) -> str:
    return " ".join(text.casefold().split())


# --------------------------------------------------------------------------- exemplar statistics
def stats_from(records: Records, labels: list[str]) -> ood.ClassStats | None:
    index = {y: i for i, y in enumerate(labels)}
    rows = [i for i, y in enumerate(records.labels) if y in index]
    if not rows:
        return None
    return ood.ClassStats.fit(records.x[rows], np.array([index[records.labels[i]] for i in rows]), len(labels))


EXACT_ROWS = 10_000  # exemplars up to which evidence is an exact scan in process; Chroma's index beyond
SLACK = 8  # extra Chroma hits asked for, to make up for records no commit names (yet)


class Exemplars:
    """The committed exemplar memory of one generation, held in process: its class statistics
    (for rejection) and the nearest-exemplar evidence. Up to ``EXACT_ROWS`` exemplars, evidence
    is an exact scan, one matrix product (0.2 ms for a query at 3,000 exemplars, where a Chroma
    query restricted to committed records took 3-11 ms). Beyond, a scan reads the whole matrix
    for every query (linear, 18 ms at 100k), while Chroma's HNSW index answers in about 2 ms
    whatever its size: evidence comes from it (approximate), keeping only the committed ones."""

    def __init__(self, records: Records, labels: list[str]) -> None:
        self.records = records
        self.row = {i: r for r, i in enumerate(records.ids)}
        norms = np.linalg.norm(records.x, axis=1, keepdims=True) if len(records.ids) else np.ones((0, 1))
        self.unit = records.x / norms.clip(1e-12)
        self.stats = stats_from(records, labels)

    def nearest(self, x: np.ndarray, n: int, store: RecordStore | None = None) -> list[list[Evidence]]:
        """The ``n`` exemplars most similar (cosine) to each row of ``x``, most similar first;
        ``store`` is the Chroma collection holding them, searched beyond ``EXACT_ROWS``."""
        n = min(n, len(self.records.ids))
        if n <= 0:
            return [[] for _ in range(len(x))]
        if store is None or len(self.records.ids) <= EXACT_ROWS:
            return self._scan(x, n)
        out: list[list[Evidence]] = []
        short = []
        for i, hits in enumerate(store.nearest_ids(x, n + SLACK)):
            live = [(self.row[j], sim) for j, sim in hits if j in self.row][:n]
            out.append(self._evidence(live))
            if len(live) < n:  # another writer's uncommitted records crowded them out
                short.append(i)
        for i, found in zip(short, self._scan(x[short], n) if short else []):
            out[i] = found
        return out

    def _scan(self, x: np.ndarray, n: int) -> list[list[Evidence]]:
        sims = ood.matmul(x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12), self.unit.T)
        values, rows = torch.from_numpy(sims).topk(n, dim=1)  # sorted, most similar first
        return [self._evidence(list(zip(r, v))) for r, v in zip(rows.tolist(), values.tolist())]

    def _evidence(self, hits: list[tuple[int, float]]) -> list[Evidence]:
        recs = self.records
        return [Evidence(recs.texts[j], recs.labels[j], str(recs.metadatas[j]["task"]), sim) for j, sim in hits]


def exemplars(learner: IntentLearner) -> Exemplars:
    """The current exemplar memory in process, built once per committed generation."""
    key = (learner.state["generation"], learner.state.get("updated"))
    cached = getattr(learner, "_exemplars", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    view = Exemplars(learner.memory.load(_live(learner.state, "exemplars")), learner.state["labels"])
    learner._exemplars = (key, view)  # type: ignore[attr-defined]
    return view


def reject(learner: IntentLearner, logits: torch.Tensor, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The in-scope score of each row and whether it is kept (workspaces from before calibration
    existed keep everything)."""
    cal = learner.state.get("ood")
    if cal is None:
        return None, np.ones(len(x), dtype=bool)
    return ood.rejections(cal, ood.head_logits(learner.strategy, torch.from_numpy(x)), x, exemplars(learner).stats)


# --------------------------------------------------------------------------- at learn time
def at_learn(
    learner: IntentLearner,
    old: dict[str, Any],
    state: dict[str, Any],
    strategy: Strategy,
    train: Records,
    memory: Records,
    added: Records,
    held: list[Records],
    seed: int,
    held_logits: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Recalibrate the threshold (into ``state["ood"]``) and look for confusable intents and
    conflicting labels. Returns the LearnReport's ``calibration``, ``confusions``, ``conflicts``."""
    labels = state["labels"]
    index = {y: i for i, y in enumerate(labels)}
    both = Records.concat([memory, added])
    pool = {i: r for r, i in enumerate(both.ids)}
    rows = [pool[i] for i in _live(state, "exemplars")]
    ex_x = both.x[rows] if rows else None
    ex_labels = [both.labels[r] for r in rows]
    stats = None
    if ex_x is not None:
        stats = ood.ClassStats.fit(ex_x, np.array([index[y] for y in ex_labels]), len(labels))
    y_train = np.array([index[y] for y in train.labels])
    previous = old.get("ood") or {}
    keep = previous.get("keep", ood.DEFAULT_KEEP)
    held_x = np.concatenate([r.x for r in held if len(r.ids)]) if any(len(r.ids) for r in held) else None
    touched = set(train.labels)
    others = None
    rest = [k for k, y in enumerate(ex_labels) if y not in touched]
    if ex_x is not None and rest:
        learned_count = {y: n for t in state["tasks"] for y, n in t["counts"].items()}  # what each class last had
        counts = np.array([learned_count.get(y, _REFERENCE_COUNT) for y in labels], dtype=np.float64)
        ow = np.sqrt(_REFERENCE_COUNT / counts[[index[ex_labels[k]] for k in rest]])
        others = (ex_x[rest], np.array([index[ex_labels[k]] for k in rest]), ow)
    learned = ood.calibrate_learn(
        strategy,
        train.x,
        y_train,
        np.isin(train.ids, added.ids),
        held_x,
        stats,
        keep,
        previous.get("score", ood.DEFAULT_SCORE),
        seed,
        others,
        held_logits,
    )
    state["ood"] = {**learned.calibration, "mode": previous.get("mode", "default")}
    new = [y for y in labels if y not in old["labels"]]
    confusions = _confusions_at_learn(learned, train, y_train, labels, new, memory, added)
    conflicts = _conflicts(train, held[-1] if held else Records.empty(), memory, held[:-1])
    report = {k: state["ood"][k] for k in ("score", "keep", "threshold", "source", "rows", "mode")}
    return {"calibration": report, "confusions": confusions, "conflicts": conflicts}


def _confusions_at_learn(
    learned: ood.LearnCalibration,
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


def _conflicts(train: Records, test: Records, memory: Records, held: list[Records]) -> list[dict[str, Any]]:
    """The same text (case and spacing aside) under different labels: within this learn, or
    against a stored example. Reported, and learned as given (the report is the warning)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for recs in (train, test):
        for t, y in zip(recs.texts, recs.labels):
            if t is not None:
                seen[normalise_text(t)].add(y)
    stored: dict[str, set[str]] = defaultdict(set)
    for recs in (memory, *held):
        for t, y in zip(recs.texts, recs.labels):
            if t is not None:
                stored[normalise_text(t)].add(y)
    out = []
    for text, ys in seen.items():
        if len(ys) > 1:
            out.append({"text": text, "labels": sorted(ys), "where": "this learn"})
        elif text in stored and stored[text] - ys:
            out.append({"text": text, "labels": sorted(ys | stored[text]), "where": "stored exemplars"})
    return out


# --------------------------------------------------------------------------- confusions now
def confusions(learner: IntentLearner, top: int = 10) -> list[dict[str, Any]]:
    """The most confused pairs of the workspace: its exemplars (scored leave-one-out by the ridge
    head, as fitted otherwise) and held-out slices, each row counted against the intent the head
    gives it; the cosine between the two class means as a second piece of evidence."""
    state, labels = learner.state, learner.state["labels"]
    if not labels:
        return []
    index = {y: i for i, y in enumerate(labels)}
    parts = [learner.memory.load(_live(state, "exemplars")), learner.stores["holdout"].load(_live(state, "holdout"))]
    recs = [r for r in parts if len(r.ids)]
    x = np.concatenate([r.x for r in recs])
    texts = [t for r in recs for t in r.texts]
    truth = np.array([index[y] for r in recs for y in r.labels])
    n_ex = len(parts[0].ids)
    counts = {label: t["counts"].get(label, 1) for t in state["tasks"] for label in t["counts"]}
    weight = torch.tensor([np.sqrt(100.0 / counts.get(labels[c], 100)) for c in truth[:n_ex]])
    loo = ood.loo_logits(learner.strategy, torch.from_numpy(x[:n_ex]), torch.from_numpy(truth[:n_ex]), weight)
    logits = learner.strategy.logits(torch.from_numpy(x))
    if loo is not None:
        logits[:n_ex] = loo.float()
    predicted = logits.argmax(1).numpy()
    stats = stats_from(parts[0], labels)
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


# --------------------------------------------------------------------------- inbox
# The newest inputs kept; the oldest go first. Anyone who can send a message can add to the inbox,
# so it is bounded.
INBOX_LIMIT = 10_000


def inbox_records(x: np.ndarray, texts: list[str | None], closest: list[str], scores: np.ndarray) -> Records:
    """Inbox records; a text's id is its hash, so the same text waits there once."""
    ids = [hashlib.sha256(t.encode()).hexdigest()[:32] if t is not None else uuid.uuid4().hex for t in texts]
    stamp = time.time()
    metas: list[dict[str, str | int | float]] = [
        {"label": c, "score": float(s), "time": stamp} for c, s in zip(closest, scores)
    ]
    return Records(ids, x, list(texts), metas)
