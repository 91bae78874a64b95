"""Which exemplars each class keeps as classes arrive, under a :class:`MemoryBudget`."""

from __future__ import annotations

import numpy as np

from agent_il.config import MemoryBudget
from agent_il.memory import selection

Ref = str | int  # an existing exemplar id, or the index of an example of the current learn


def plan(
    budget: MemoryBudget,
    current: dict[str, list[str]],
    current_x: dict[str, np.ndarray],
    new_x: np.ndarray,
    new_labels: list[str],
    n_classes: int,
    task_id: int,
) -> dict[str, list[Ref]]:
    """The exemplars every class keeps after this learn, in keep-order. A class seen in this
    learn is chosen afresh from its old exemplars plus its new examples; any other class
    keeps a prefix of its list (which only shortens under a total budget)."""
    m = budget.quota(n_classes)
    rng = np.random.default_rng([budget.seed, task_id])
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(new_labels):
        by_label.setdefault(label, []).append(i)
    out: dict[str, list[Ref]] = {label: list(ids[:m]) for label, ids in current.items()}
    for label, idx in by_label.items():
        old_ids = current.get(label, [])
        refs: list[Ref] = [*old_ids, *idx]
        parts = [current_x[label]] if old_ids else []
        x = np.concatenate([*parts, new_x[idx]])
        out[label] = [refs[j] for j in selection.select(x, m, budget.selection, rng)]
    return out
