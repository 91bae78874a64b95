"""Continual-learning metrics over an accuracy matrix ``R[i][j]``: accuracy (in %) on task j's
held-out slice after learning task i. Tasks without a held-out slice have no column.

- final accuracy (ACC): mean of the last row;
- average incremental accuracy: mean over rows of each row's mean;
- average forgetting (Chaudhry et al., 2018): for each old task, its best earlier accuracy
  minus its final accuracy, averaged over old tasks;
- backward transfer (Lopez-Paz & Ranzato, 2017): final accuracy minus the accuracy right after
  the task was learned, averaged over old tasks (negative means forgetting).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import mean
from typing import TYPE_CHECKING, Any

import numpy as np

from agent_il.results import Task

if TYPE_CHECKING:
    from agent_il.memory.records import Records


@dataclass(frozen=True)
class AccuracyMatrix:
    tasks: list[int]  # column task ids, in learning order
    rows: list[tuple[int, dict[int, float]]]  # (after task id, {task id: accuracy})

    @classmethod
    def from_state(cls, evaluation: list[dict[str, Any]]) -> AccuracyMatrix:
        rows = [(int(r["after_task"]), {int(k): float(v) for k, v in r["accuracy"].items()}) for r in evaluation]
        tasks: list[int] = []
        for _, acc in rows:
            tasks += [t for t in acc if t not in tasks]
        return cls(tasks, rows)

    def grid(self) -> list[list[float | None]]:
        return [[acc.get(t) for t in self.tasks] for _, acc in self.rows]

    def _learned_at(self, task: int) -> dict[int, float]:
        return next(acc for after, acc in self.rows if task in acc)

    def final_accuracy(self) -> float | None:
        return mean(self.rows[-1][1].values()) if self.rows and self.rows[-1][1] else None

    def average_incremental_accuracy(self) -> float | None:
        means = [mean(acc.values()) for _, acc in self.rows if acc]
        return mean(means) if means else None

    def _old_tasks(self) -> list[int]:
        if len(self.rows) < 2:
            return []
        last_after, last = self.rows[-1]
        return [t for t in self.tasks if t in last and t != last_after and t in self.rows[-2][1]]

    def forgetting(self) -> float | None:
        old = self._old_tasks()
        if not old:
            return None
        last = self.rows[-1][1]
        return mean(max(acc[t] for _, acc in self.rows[:-1] if t in acc) - last[t] for t in old)

    def backward_transfer(self) -> float | None:
        old = self._old_tasks()
        if not old:
            return None
        last = self.rows[-1][1]
        return mean(last[t] - self._learned_at(t)[t] for t in old)

    def summary(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "rows": [{"after_task": after, "accuracy": acc} for after, acc in self.rows],
            "matrix": self.grid(),
            "final_accuracy": self.final_accuracy(),
            "average_incremental_accuracy": self.average_incremental_accuracy(),
            "forgetting": self.forgetting(),
            "backward_transfer": self.backward_transfer(),
        }


@dataclass(frozen=True)
class FileEvaluation:
    """Accuracy on a labelled set: overall, per class and per task that introduced the class."""

    examples: int
    accuracy: float
    per_class: dict[str, dict[str, Any]]  # label -> {"accuracy", "examples"}
    per_task: dict[str, dict[str, Any]]  # task id -> {"name", "accuracy", "examples"}
    unknown_labels: list[str]  # labels in the data the workspace has never learned (always wrong)

    @classmethod
    def of(cls, predicted: list[str], truth: list[str], tasks: list[Task]) -> FileEvaluation:
        """Grade ``predicted`` labels against ``truth``; ``tasks`` say which task introduced a class."""
        hits = [p == y for p, y in zip(predicted, truth)]
        introduced = {y: t for t in tasks for y in t.new_classes}
        groups: dict[str, list[bool]] = {}
        by_task: dict[str, list[bool]] = {}
        for y, hit in zip(truth, hits):
            groups.setdefault(y, []).append(hit)
            if y in introduced:
                by_task.setdefault(str(introduced[y].id), []).append(hit)
        names = {str(t.id): t.name for t in tasks}
        return cls(
            examples=len(hits),
            accuracy=100.0 * sum(hits) / len(hits),
            per_class={y: {"accuracy": 100.0 * sum(h) / len(h), "examples": len(h)} for y, h in groups.items()},
            per_task={
                t: {"name": names[t], "accuracy": 100.0 * sum(h) / len(h), "examples": len(h)}
                for t, h in sorted(by_task.items(), key=lambda kv: int(kv[0]))
            },
            unknown_labels=sorted(y for y in groups if y not in introduced),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def correct(logits: Any, labels: list[str], recs: Records) -> np.ndarray:
    """Whether the head's ``logits`` (numpy or torch, n x classes) label each of ``recs`` right."""
    index = {y: i for i, y in enumerate(labels)}
    return np.asarray(logits).argmax(1) == np.array([index.get(y, -1) for y in recs.labels], dtype=np.int64)
