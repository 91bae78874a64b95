"""How many exemplars each class keeps, and which ones, as classes arrive."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agent_il import selection, validation
from agent_il.errors import InvalidInputError

Ref = str | int  # an existing exemplar id, or the index of an example of the current learn


@dataclass(frozen=True)
class MemoryBudget:
    """Either ``per_class`` exemplars for every class, or ``total`` shared by all classes
    (each class then keeps ``total // n_classes``, shrinking as classes arrive)."""

    per_class: int | None = 20
    total: int | None = None
    selection: str = "herding"
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.per_class is None) == (self.total is None):
            raise InvalidInputError("set exactly one of memory per_class and total")
        if self.per_class is not None:
            validation.positive_int(self.per_class, "memory per_class")
        if self.total is not None:
            validation.positive_int(self.total, "memory total")
        if self.selection not in selection.SELECTIONS:
            raise InvalidInputError(f"unknown selection {self.selection!r}; choose one of {selection.SELECTIONS}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def quota(self, n_classes: int) -> int:
        if self.total is not None:
            return max(1, self.total // max(n_classes, 1))
        assert self.per_class is not None
        return self.per_class

    def plan(
        self,
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
        m = self.quota(n_classes)
        rng = np.random.default_rng([self.seed, task_id])
        by_label: dict[str, list[int]] = {}
        for i, label in enumerate(new_labels):
            by_label.setdefault(label, []).append(i)
        plan: dict[str, list[Ref]] = {label: list(ids[:m]) for label, ids in current.items()}
        for label, idx in by_label.items():
            old_ids = current.get(label, [])
            refs: list[Ref] = [*old_ids, *idx]
            parts = [current_x[label]] if old_ids else []
            x = np.concatenate([*parts, new_x[idx]])
            plan[label] = [refs[j] for j in selection.select(x, m, self.selection, rng)]
        return plan
