"""What the learner hands back: plain frozen dataclasses, easy to print, compare and serialise."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Evidence:
    """A stored exemplar returned as the reason for a prediction."""

    text: str | None
    label: str
    task: str
    similarity: float


@dataclass(frozen=True)
class Task:
    """One ``learn`` call."""

    id: int
    name: str
    classes: list[str]
    new_classes: list[str]
    counts: dict[str, int]
    examples: int
    time: str  # ISO 8601, UTC
    seconds: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        return cls(**d)


@dataclass(frozen=True)
class LearnReport:
    task: Task
    new_classes: list[str]
    updated_classes: list[str]
    examples: int
    classes_total: int
    exemplars_total: int
    seconds: float
    holdout_examples: int = 0
    # one entry per task with a held-out slice: {"task", "name", "before", "after"} (accuracy in %)
    holdout_accuracy: list[dict[str, Any]] = field(default_factory=list)
    snapshot: str | None = None  # the automatic snapshot of the state before this learn
    timings: dict[str, float] = field(default_factory=dict)  # encode, fit, memory, commit
    # the rejection threshold this learn calibrated: {score, keep, threshold, source, rows, mode}
    calibration: dict[str, Any] | None = None
    # pairs (new intent, other intent) that overlap: {new, other, rate, reverse_rate, examples, near_duplicates}
    confusions: list[dict[str, Any]] = field(default_factory=list)
    # the same text under different labels: {text, labels, where}; learned as given, reported here
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Example:
    """One learned (or held-out) example as the knowledge base keeps it."""

    id: str
    text: str | None
    label: str
    task: str
    task_id: int
    time: float
    source: str
    weight: float  # the weight it entered the head with (classes of a learn weigh alike)
    held_out: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IntentInfo:
    label: str
    examples: int
    exemplars: int
    held_out: int
    tasks: list[str]  # the learns that taught it
    holdout_accuracy: float | None  # % of its held-out examples the head labels right now

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EditReport:
    """What an edit of the knowledge base changed (``changed``: ids removed, ids relabelled old
    -> new, intents renamed / merged / deleted), the forgetting check and the automatic snapshot
    of the state before it; ``purged``: where an erasure removed copies, with how many."""

    action: str
    changed: dict[str, Any]
    examples_removed: int
    examples_relabelled: int
    classes_total: int
    examples_total: int
    exact: bool  # the head equals the one learned without (or with the new labels of) them
    seconds: float
    holdout_accuracy: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    snapshot: str | None = None
    purged: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MigrationReport:
    """What a migration to another encoder did: from and to which model, backend and dimension,
    how many texts it encoded again, the forgetting check (each task's held-out accuracy before,
    on the old encoder, and after, on the new one), the calibration it fitted again, the
    automatic snapshot that rollback returns to, and where its time went."""

    model: dict[str, str]  # {from, to}
    backend: dict[str, str]
    dim: dict[str, int | None]
    examples: int
    holdout_examples: int
    inbox: int  # unknowns and corrections waiting for review, encoded again
    classes_total: int
    tasks: int
    skipped_tasks: list[int]  # tasks with no example left (learned as vectors or all removed)
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # encode, replay, commit
    holdout_accuracy: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    snapshot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConsolidationReport:
    """What a consolidation did: the base model and the adapted encoder's id, the fine-tune
    (examples and intents it learned from, steps and epochs the budget allowed, where it ran),
    the migration to it that followed (the forgetting check, the calibration, the snapshot that
    rollback returns to) and where the time went."""

    base: str
    encoder: str
    tuning: dict[str, Any]
    migration: MigrationReport
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


UNKNOWN = "unknown"  # the label of an input that belongs to no known intent


@dataclass(frozen=True)
class Prediction:
    """``label`` is ``UNKNOWN`` when the input is rejected as out of scope (``known`` is then False);
    ``top_k`` still ranks the known intents. ``score`` is the in-scope score the rejection used."""

    label: str
    confidence: float
    top_k: list[tuple[str, float]]
    evidence: list[Evidence]
    known: bool = True
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
