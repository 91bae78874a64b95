"""Edits of the knowledge base (remove, relabel, rename, merge, delete), computed on copies like
a learn step: the learner resolves what to change, runs :func:`apply` in a transaction and
commits what it returns.

The state names every learned example by task and label, so the head is a function of it:
:func:`revision` lists the rows whose (column, weight) differ between two states, and a head
with ``exact_edits`` (ridge) takes their old terms out and their new ones in. Records are never
edited in place: a relabelled record is a copy under a new id (``copied_from`` the old one), so
snapshots keep meaning what they meant.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from agent_il.engine.metrics import correct
from agent_il.engine.step import at_learn, in_learn_order
from agent_il.errors import InvalidInputError
from agent_il.memory.records import Records
from agent_il.ood.scores import head_logits
from agent_il.state import WorkspaceState, now
from agent_il.strategies.base import Revision, Strategy
from agent_il.strategies.ridge import balance_weight as weight

Loader = Callable[[str, list[str]], Records]  # (store, ids) -> their records, in that order


@dataclass(frozen=True)
class Change:
    """What to do to the records: drop ``remove`` (example or held-out ids), give ``relabel``'s
    ids a new label, and keep each ``rename``d intent's column in its place."""

    action: str
    remove: frozenset[str] = frozenset()
    relabel: dict[str, str] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)


@dataclass
class Edit:
    """A computed edit, ready to commit."""

    state: WorkspaceState
    strategy: Strategy
    added: dict[str, Records]  # the relabelled copies, per store
    copies: dict[str, str]  # old id -> new id
    accuracy: dict[int, dict[str, float | None]]
    checks: dict[str, Any]


def entries(state: WorkspaceState) -> dict[str, tuple[str, float]]:
    """Each learned example's (label, weight), as the state names them."""
    out: dict[str, tuple[str, float]] = {}
    for by_label in (state.examples or {}).values():
        for label, ids in by_label.items():
            w = weight(len(ids))
            out.update((i, (label, w)) for i in ids)
    return out


def newest(state: WorkspaceState, load: Loader) -> tuple[Records, int]:
    """The newest learn that still has examples, its rows in the order they were learned."""
    task = max((int(t) for t, by in (state.examples or {}).items() if any(by.values())), default=None)
    if task is None:
        return Records.empty(state.dim or 0), 0
    ids = [i for ids in state.examples[str(task)].values() for i in ids]  # type: ignore[index]
    return in_learn_order(load("examples", ids)), task


def revision(
    old: WorkspaceState, new: WorkspaceState, load: Loader, recent: Records | None = None
) -> tuple[list[int | None], Revision]:
    """The column map and the rows whose (column, weight) differ from ``old`` to ``new``; a
    relabelled copy and its source are one row (same embedding), moved from one to the other.
    ``recent``: :func:`newest` of ``new``, if the caller has it already."""
    a, b = entries(old), entries(new)
    changed = sorted(i for i in a.keys() | b.keys() if a.get(i) != b.get(i))
    recs = load("examples", changed)
    source = {i: str(m["copied_from"]) for i, m in zip(recs.ids, recs.metadatas) if "copied_from" in m}
    pairs = {i: s for i, s in source.items() if i in b and i not in a and s in a and s not in b}
    taken = set(pairs.values())
    rows = [r for r, i in enumerate(changed) if i not in taken]
    olds = [pairs.get(changed[r], changed[r]) for r in rows]  # whose old terms each row takes out
    news = [changed[r] for r in rows]
    old_col = {y: j for j, y in enumerate(old.labels)}
    new_col = {y: j for j, y in enumerate(new.labels)}
    if recent is None:
        recent, _ = newest(new, load)
    groups = Counter((str(m["task_id"]), y) for m, y in zip(recent.metadatas, recent.labels))

    def tensor(values: list[Any], dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype)

    change = Revision(
        x=torch.from_numpy(recs.x[rows]),
        y_old=tensor([old_col.get(a[i][0], -1) if i in a else -1 for i in olds], torch.long),
        w_old=tensor([a[i][1] if i in a else 0.0 for i in olds], torch.float64),
        y_new=tensor([new_col[b[i][0]] if i in b else -1 for i in news], torch.long),
        w_new=tensor([b[i][1] if i in b else 0.0 for i in news], torch.float64),
        recent=(
            torch.from_numpy(recent.x),
            tensor([new_col[y] for y in recent.labels], torch.long),
            tensor(
                [weight(groups[(str(m["task_id"]), y)]) for m, y in zip(recent.metadatas, recent.labels)],
                torch.float64,
            ),
        ),
    )
    return [old_col.get(y) for y in new.labels], change


def basis(state: WorkspaceState, task: int) -> WorkspaceState:
    """What a statistics checkpoint whose newest task is ``task`` was written for: the learns
    since then only added tasks and appended their new labels (an edit writes a checkpoint)."""
    later = {y for t in state.tasks if t.id > task for y in t.new_classes}
    return replace(
        state,
        tasks=[t for t in state.tasks if t.id <= task],
        labels=[y for y in state.labels if y not in later],
        examples={t: by for t, by in (state.examples or {}).items() if int(t) <= task},
    )


def derive(strategy: Strategy, old: WorkspaceState, new: WorkspaceState, load: Loader) -> None:
    """Bring ``strategy`` (fitted on ``old``'s examples, statistics loaded) to ``new``'s."""
    order, change = revision(old, new, load)
    strategy.revise(order, change, None)


def _copy(recs: Records, labels: dict[str, str], ids: dict[str, str]) -> Records:
    metas = [{**m, "label": labels[i], "copied_from": i} for i, m in zip(recs.ids, recs.metadatas)]
    return Records([ids[i] for i in recs.ids], recs.x, list(recs.texts), metas)


def _relist(ids: list[str], remove: set[str], copies: dict[str, str]) -> list[str]:
    return [copies.get(i, i) for i in ids if i not in remove]


def apply(old: WorkspaceState, head: Strategy, change: Change, load: Loader) -> Edit:
    """Compute ``change`` on copies of ``old`` and ``head`` (the head's statistics loaded)."""
    state = old.copy()
    assert state.examples is not None
    known = {i: (t, y) for t, by in state.examples.items() for y, ids in by.items() for i in ids}
    held_ids = [i for ids in state.holdout.values() for i in ids]
    held = load("holdout", held_ids)
    held_label = dict(zip(held.ids, held.labels))
    copies = {i: uuid.uuid4().hex[:16] for i in change.relabel}
    moved = {**change.relabel, **{copies[i]: y for i, y in change.relabel.items()}}

    # Examples: drop the removed, move the relabelled copies to their new label.
    for task, by_label in state.examples.items():
        new_by: dict[str, list[str]] = {}
        for label, ids in by_label.items():
            for i in ids:
                if i in change.remove:
                    continue
                j = copies.get(i, i)
                new_by.setdefault(moved.get(j, label), []).append(j)
        state.examples[task] = new_by
    if not state.live("examples"):
        raise InvalidInputError(
            "that would remove every example the workspace has learned; delete the workspace instead"
        )

    # The head's columns: the intents that still have examples, renamed ones in place, new ones last.
    having = {y for by in state.examples.values() for y, ids in by.items() if ids}
    labels = [change.rename.get(y, y) for y in old.labels]
    labels = [y for y in labels if y in having]
    labels += sorted(having - set(labels), key=lambda y: min(i for i, z in moved.items() if z == y))
    state.labels = labels

    exemplars: dict[str, list[str]] = {}
    for label, ids in old.exemplars.items():
        for i in ids:
            if i not in change.remove:
                j = copies.get(i, i)
                exemplars.setdefault(moved.get(j, label), []).append(j)
    state.exemplars = {y: exemplars[y] for y in labels if y in exemplars}
    state.holdout = {
        t: kept
        for t, ids in old.holdout.items()
        if (kept := [j for j in _relist(ids, set(change.remove), copies) if moved.get(j, held_label.get(j)) in having])
    }

    # The relabelled copies, per store.
    added = {}
    exemplar_ids = set(old.live("exemplars"))
    held_row = {i: r for r, i in enumerate(held.ids)}
    for store, mine in (
        ("examples", [i for i in change.relabel if i in known]),
        ("exemplars", [i for i in change.relabel if i in exemplar_ids]),
        ("holdout", [i for i in change.relabel if i in held_row]),
    ):
        recs = held.take([held_row[i] for i in mine]) if store == "holdout" else load(store, mine)
        added[store] = _copy(recs, change.relabel, copies)
    overlay = {store: dict(zip(r.ids, range(len(r.ids)))) for store, r in added.items()}

    def load_after(store: str, ids: list[str]) -> Records:
        fresh = [i for i in ids if i in overlay[store]]
        if not fresh:
            return load(store, ids)
        parts = Records.concat(
            [
                load(store, [i for i in ids if i not in overlay[store]]),
                added[store].take([overlay[store][i] for i in fresh]),
            ]
        )
        row = {i: r for r, i in enumerate(parts.ids)}
        return parts.take([row[i] for i in ids])

    _retally(state, load_after)
    strategy = copy.deepcopy(head)
    recent, task_id = newest(state, load_after)
    order, revised = revision(old, state, load_after, recent)
    memory = load_after("exemplars", state.live("exemplars"))
    index = {y: j for j, y in enumerate(state.labels)}
    replay = (torch.from_numpy(memory.x), torch.tensor([index[y] for y in memory.labels])) if memory.ids else None
    strategy.revise(order, revised, replay)

    both = load_after("holdout", state.live("holdout"))
    raw = strategy.recurring_scores(torch.from_numpy(both.x)) if both.ids else None
    logits = head_logits(strategy, raw) if raw is not None else None
    accuracy = _accuracy(old, state, head, raw, both, held_label)
    if state.evaluation and accuracy:  # the newest row of the accuracy matrix is the head as it is now
        state.evaluation[-1] = {**state.evaluation[-1], "accuracy": {str(t): a["after"] for t, a in accuracy.items()}}
    in_recent = set(recent.ids)
    checks, _ = at_learn(
        old,
        state,
        strategy,
        recent,
        memory.take([r for r, i in enumerate(memory.ids) if i not in in_recent]),
        memory.take([r for r, i in enumerate(memory.ids) if i in in_recent]),
        [both],
        task_id,
        logits,
    )
    state.updated = now()
    return Edit(state, strategy, added, copies, accuracy, checks)


def _retally(state: WorkspaceState, load: Loader) -> None:
    """Each task's classes and counts as its examples and held-out slice are now."""
    tasks = []
    for t in state.tasks:
        counts: Counter[str] = Counter({y: len(ids) for y, ids in (state.examples or {}).get(str(t.id), {}).items()})
        counts.update(load("holdout", state.holdout.get(str(t.id), [])).labels)
        classes = [y for y in state.labels if counts[y]]
        new = [y for y in classes if y not in {c for u in tasks for c in u.classes}]
        tasks.append(
            replace(
                t,
                classes=classes,
                new_classes=new,
                counts={y: counts[y] for y in classes},
                examples=sum(counts.values()),
            )
        )
    state.tasks = tasks


def _accuracy(
    old: WorkspaceState,
    state: WorkspaceState,
    old_head: Strategy,
    scores: torch.Tensor | None,
    both: Records,
    held_label: dict[str, str],
) -> dict[int, dict[str, float | None]]:
    """Held-out accuracy of every task slice (as it is after the edit) before and after it
    (``scores``: the new head's raw scores of ``both``)."""
    out: dict[int, dict[str, float | None]] = {}
    start = 0
    x = torch.from_numpy(both.x)
    # Before the edit, a row is right if the old head gave its old label (a renamed or merged
    # intent's rows are copies: their source says what they were).
    sources = [str(m.get("copied_from", i)) if i not in held_label else i for i, m in zip(both.ids, both.metadatas)]
    was = Records(
        both.ids,
        both.x,
        both.texts,
        [{**m, "label": held_label.get(s, m["label"])} for s, m in zip(sources, both.metadatas)],
    )
    before = correct(old_head.logits(x), old.labels, was) if both.ids else np.zeros(0, dtype=bool)
    after = correct(scores, state.labels, both) if scores is not None else np.zeros(0, dtype=bool)
    for key, ids in state.holdout.items():
        rows = slice(start, start + len(ids))
        start += len(ids)
        out[int(key)] = {"before": 100.0 * float(before[rows].mean()), "after": 100.0 * float(after[rows].mean())}
    return out
