"""The workspace state: what a commit publishes. Typed in process, the same JSON on disk as
before the types existed (old workspaces load unchanged).

It names everything live: the labels (the head's column order), the tasks, the ids of every
learned example per task and label (the head is derived from them), of the exemplar and
held-out records, the held-out accuracy after every learn, the fitted rejection threshold, the
weights blob of this generation and the statistics checkpoint (the newest one only: the learns
since it are folded in when it is read)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from agent_il.config import MemoryBudget, RejectionSettings, WorkspaceConfig
from agent_il.errors import WorkspaceError
from agent_il.results import Task

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # 1: before every example was kept (``examples`` is None: no edits)
STORES = ("exemplars", "holdout", "examples")  # the record stores a commit names (not the inbox)
SPACE = re.compile(r"[0-9a-f]{6,32}")
ENCODERS = "encoders"  # blob folder of adapted encoders: one subfolder a space, dropped with it


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Calibration:
    """The fitted part of rejection: the threshold and the score distribution it came from
    (``quantiles`` at 0%, 1%, ..., 100%; ``norm``: each raw score's mean and std)."""

    threshold: float | None
    norm: dict[str, list[float]]
    quantiles: list[float]
    rows: int
    source: str
    fitted_on: dict[str, int] | None = None


@dataclass
class WorkspaceState:
    config: WorkspaceConfig
    created: str
    updated: str
    dim: int | None = None
    labels: list[str] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    exemplars: dict[str, list[str]] = field(default_factory=dict)  # label -> record ids, keep-order
    holdout: dict[str, list[str]] = field(default_factory=dict)  # task id -> record ids
    # task id -> label -> ids of the examples it learned; None: a workspace from before they were kept
    examples: dict[str, dict[str, list[str]]] | None = field(default_factory=dict)
    evaluation: list[dict[str, Any]] = field(default_factory=list)  # {"after_task", "accuracy": {task: %}}
    calibration: Calibration | None = None
    generation: int = 0
    weights: str | None = None
    weights_sha256: str | None = None
    statistics: str | None = None
    statistics_sha256: str | None = None
    statistics_task: int | None = None  # the newest task the checkpoint holds (None: every task)
    space: str = ""  # whose collections hold the records: a migration to another encoder makes a new one
    # the newest task whose examples the (adapted) encoder was fine-tuned on; None: it saw none
    tuned_through: int | None = None

    @classmethod
    def new(cls, config: WorkspaceConfig) -> WorkspaceState:
        stamp = now()
        return cls(config=config, created=stamp, updated=stamp)

    def summary(self) -> dict[str, Any]:
        """What ``agent-il status`` shows of the state."""
        return {
            "model": self.config.model,
            "backend": self.config.backend,
            "dim": self.dim,
            "strategy": self.config.strategy,
            "memory": self.config.memory.to_dict(),
            "classes": len(self.labels),
            "tasks": len(self.tasks),
            "exemplars": len(self.live("exemplars")),
            "holdout_examples": len(self.live("holdout")),
            "generation": self.generation,
            "updated": self.updated,
        }

    def live(self, store: str) -> list[str]:
        """Every record id of ``store`` this state names."""
        if store == "examples":
            return [i for by_label in (self.examples or {}).values() for ids in by_label.values() for i in ids]
        return [i for ids in getattr(self, store).values() for i in ids]

    def copy(self) -> WorkspaceState:
        """A copy to compute a change on: its containers are new, their immutable contents (ids,
        numbers, frozen tasks and settings) shared. A learn copies the state once; a copy that
        made every id anew (as JSON would) costs ten times more at 15,000 examples."""
        return replace(
            self,
            labels=list(self.labels),
            tasks=list(self.tasks),
            exemplars={k: list(v) for k, v in self.exemplars.items()},
            holdout={k: list(v) for k, v in self.holdout.items()},
            examples=None
            if self.examples is None
            else {t: {y: list(ids) for y, ids in by.items()} for t, by in self.examples.items()},
            evaluation=[{**e, "accuracy": dict(e["accuracy"])} for e in self.evaluation],
        )

    def rejection_json(self) -> dict[str, Any] | None:
        """Settings and fitted threshold together, as ``state["ood"]`` has them on disk."""
        if self.calibration is None:
            return None
        cal = {k: v for k, v in asdict(self.calibration).items() if k != "fitted_on" or v is not None}
        return {**asdict(self.config.rejection), **cal}

    def to_json(self) -> dict[str, Any]:
        c = self.config
        out: dict[str, Any] = {
            "created": self.created,
            "updated": self.updated,
            "model": c.model,
            "backend": c.backend,
            "dim": self.dim,
            "strategy": {"name": c.strategy, "config": c.strategy_config},
            "memory": c.memory.to_dict(),
            "auto_snapshots": c.auto_snapshots,
            "labels": self.labels,
            "tasks": [asdict(t) for t in self.tasks],
            "exemplars": self.exemplars,
            "holdout": self.holdout,
            "examples": self.examples,
            "evaluation": self.evaluation,
            "schema": SCHEMA_VERSION,
            "generation": self.generation,
            "weights": self.weights,
        }
        if self.weights_sha256 is not None:
            out["weights_sha256"] = self.weights_sha256
        if self.statistics is not None:
            out["statistics"], out["statistics_sha256"] = self.statistics, self.statistics_sha256
            if self.statistics_task is not None:
                out["statistics_task"] = self.statistics_task
        if self.calibration is not None:
            out["ood"] = self.rejection_json()
        if self.space:
            out["space"] = self.space
        if self.tuned_through is not None:
            out["tuned_through"] = self.tuned_through
        return out

    @classmethod
    def from_json(cls, d: Any, where: str = "the workspace state") -> WorkspaceState:
        """The typed state of a JSON one (its schema is checked where it is read: the backends)."""
        try:
            ood = d.get("ood")
            rejection = RejectionSettings(ood["score"], ood["keep"], ood["mode"]) if ood else RejectionSettings()
            config = WorkspaceConfig(
                model=d["model"],
                backend=d.get("backend", "torch"),  # made before there was another backend
                strategy=d["strategy"]["name"],
                strategy_config=d["strategy"]["config"],
                memory=MemoryBudget(**d["memory"]),
                auto_snapshots=d["auto_snapshots"],
                rejection=rejection,
            )
            calibration = None
            if ood:
                calibration = Calibration(
                    ood["threshold"], ood["norm"], ood["quantiles"], ood["rows"], ood["source"], ood.get("fitted_on")
                )
            return cls(
                config=config,
                created=d["created"],
                updated=d["updated"],
                dim=d["dim"],
                labels=list(d["labels"]),
                tasks=[Task.from_dict(t) for t in d["tasks"]],
                exemplars={k: list(v) for k, v in d["exemplars"].items()},
                holdout={k: list(v) for k, v in d["holdout"].items()},
                examples=_examples(d),
                evaluation=list(d["evaluation"]),
                calibration=calibration,
                generation=int(d["generation"]),
                weights=d["weights"],
                weights_sha256=d.get("weights_sha256"),
                statistics=d.get("statistics"),
                statistics_sha256=d.get("statistics_sha256"),
                statistics_task=None if d.get("statistics_task") is None else int(d["statistics_task"]),
                space=_space(d.get("space", "")),
                tuned_through=None if d.get("tuned_through") is None else int(d["tuned_through"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WorkspaceError(f"{where} is malformed: {type(exc).__name__}: {exc}") from exc

    def with_config(self, config: WorkspaceConfig) -> WorkspaceState:
        return replace(self, config=config)


def _space(space: Any) -> str:
    """A space is part of Chroma collection names: hex digits only (see ``storage.base.new_space``)."""
    if not isinstance(space, str) or (space and not SPACE.fullmatch(space)):
        raise ValueError(f"bad space {space!r}")
    return space


def _examples(d: dict[str, Any]) -> dict[str, dict[str, list[str]]] | None:
    if d.get("schema", 1) < 2 or d.get("examples") is None:
        return None
    return {t: {y: list(ids) for y, ids in by_label.items()} for t, by_label in d["examples"].items()}
