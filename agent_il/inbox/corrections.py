"""Learning from corrections ("no, I meant X"): texts with the intent they should have had.

A correction is a source like any other: it is learned through the learner's normal learn path
(snapshot first, calibration, the forgetting check) as one task named ``feedback:YYYY-MM-DD``
(UTC), whose examples keep ``source=feedback``, so ``examples list`` and ``tasks list`` show what
corrections taught. Anyone who talks to an agent can send one, so an agent's corrections wait in
the review queue (:mod:`agent_il.inbox.review`) until the operator accepts them (one learn) or
rejects them; the operator's own are learned at once.

A correction names an intent the agent knows: teaching a new intent from one message is what
``learn`` (or ``learn_intent``, with its minimum of examples) is for, so an unknown label is
refused unless the operator says it is a new intent (``new_intent=True``, ``--new-intent``).
Labels are checked again at accept: an intent may have been renamed or deleted meanwhile.

The functions take the learner (:class:`agent_il.learner.IntentLearner`, which this layer may not
import) as an argument, as :mod:`agent_il.data.transfer` does, and keep the facade thin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import numpy as np

from agent_il import validation
from agent_il.errors import InvalidInputError
from agent_il.inbox.review import SENDERS, Pending
from agent_il.results import UNKNOWN, LearnReport, Prediction

SOURCE = "feedback"  # the examples' ``source``, and the task name's prefix
Progress = Callable[[int, int], None]


class Learner(Protocol):
    """What these functions use of :class:`agent_il.learner.IntentLearner`: its learn path on
    encoded texts with a source (``_learn``), as ``learn_inbox`` uses it."""

    inbox: Any

    @property
    def labels(self) -> list[str]: ...

    def _encode(self, texts: list[str], on_progress: Progress | None = None) -> np.ndarray: ...

    def predict_vectors(self, vectors: Any, k: int = 3, evidence: int = 3, inbox: bool = True) -> list[Prediction]: ...

    def _learn(
        self,
        x: np.ndarray,
        labels: list[str],
        texts: list[str] | None,
        task: str | None,
        holdout: float,
        start: float,
        source: str,
    ) -> LearnReport: ...


@dataclass(frozen=True)
class Correction:
    """What became of some corrections: learned now (``report``), or queued for review (``ids``:
    their ids in the queue; after :func:`accept`, the ids accepted)."""

    labels: list[str]
    predicted: list[str]  # what the agent gave each text before the correction (``unknown``: rejected)
    report: LearnReport | None = None
    ids: list[str] = field(default_factory=list)

    @property
    def learned(self) -> bool:
        return self.report is not None

    def to_dict(self) -> dict[str, Any]:
        """The learn report's fields (when learned), with ``learned``, ``ids`` and ``corrections``."""
        out: dict[str, Any] = self.report.to_dict() if self.report is not None else {}
        fixes = [{"label": y, "predicted": p} for y, p in zip(self.labels, self.predicted)]
        return {**out, "learned": self.learned, "ids": list(self.ids), "corrections": fixes}


def task_name(now: datetime | None = None) -> str:
    """``feedback:YYYY-MM-DD``, the day in UTC."""
    return f"{SOURCE}:{(now or datetime.now(timezone.utc)).strftime('%Y-%m-%d')}"


def correct(
    learner: Learner,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    review: bool = False,
    new_intent: bool = False,
    sender: str = "api",
    on_progress: Progress | None = None,
) -> Correction:
    """Learn that each of ``texts`` means the matching one of ``labels``, as one feedback task,
    or with ``review`` queue them for the operator (:func:`accept`). ``sender``: who sent them
    (tool, cli, api), kept with a queued correction. Refused, nothing changed, on any bad argument."""
    texts = validation.texts(texts, max_chars=validation.max_text_chars())
    label_list = validation.labels(labels, len(texts))
    for name, flag in (("review", review), ("new_intent", new_intent)):
        if not isinstance(flag, bool):
            raise InvalidInputError(f"{name} must be True or False")
    if sender not in SENDERS:
        raise InvalidInputError(f"sender must be one of {', '.join(SENDERS)}")
    names = ["label"] if len(label_list) == 1 else [f"labels[{i}]" for i in range(len(label_list))]
    _known(learner, label_list, names, new_intent)
    start = time.perf_counter()
    x = learner._encode(texts, on_progress)
    predicted = _predicted(learner, x)
    if review:
        queued = learner.inbox.corrections.add(x, texts, label_list, predicted, sender)
        return Correction(label_list, predicted, ids=queued)
    return Correction(label_list, predicted, _learn(learner, x, texts, label_list, start))


def accept(
    learner: Learner,
    ids: Sequence[str] | None = None,
    *,
    new_intent: bool = False,
    on_progress: Progress | None = None,
) -> Correction:
    """Learn the pending corrections ``ids`` (all when None) as one feedback task, then take them
    out of the queue. An id that does not wait, or a label that is no known intent (unless
    ``new_intent``), is refused, and nothing is learned."""
    if not isinstance(new_intent, bool):
        raise InvalidInputError("new_intent must be True or False")
    waiting: list[Pending] = learner.inbox.corrections.pending(ids)
    if not waiting:
        raise InvalidInputError("no corrections are waiting for review")
    labels = [p.label for p in waiting]
    _known(learner, labels, [f"correction {p.id}" for p in waiting], new_intent)
    # Checked again: the longest learnable text may have been lowered since they were queued.
    texts = validation.texts([p.text for p in waiting], "corrections", max_chars=validation.max_text_chars())
    start = time.perf_counter()
    report = _learn(learner, learner._encode(texts, on_progress), texts, labels, start)
    learner.inbox.corrections.drop([p.id for p in waiting])
    return Correction(labels, [p.predicted for p in waiting], report, [p.id for p in waiting])


def _known(learner: Learner, labels: list[str], names: list[str], new_intent: bool) -> None:
    if new_intent:
        return
    known = set(learner.labels)
    for name, label in zip(names, labels):
        if label not in known:
            raise InvalidInputError(
                f"{name}: {validation.cut(label, 40)!r} is not a known intent; a correction names the intent a "
                "message meant (new_intent=True, or --new-intent, makes it a new one)"
            )


def _predicted(learner: Learner, x: np.ndarray) -> list[str]:
    """The label the agent gives each row now (``unknown`` when rejected, or when it knows nothing)."""
    if not learner.labels:
        return [UNKNOWN] * len(x)
    return [p.label if p.known else UNKNOWN for p in learner.predict_vectors(x, k=1, evidence=0, inbox=False)]


def _learn(learner: Learner, x: np.ndarray, texts: list[str], labels: list[str], start: float) -> LearnReport:
    report = learner._learn(x, labels, texts, task_name(), 0.0, start, SOURCE)
    learner.inbox.forget_texts(texts)  # learned now: no longer an unknown waiting for discovery
    return report
