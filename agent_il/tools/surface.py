"""The one tool surface every agent-framework adapter wraps: the tools' names and descriptions
(:data:`SPECS`), and :class:`IntentTools`, the functions behind them.

Adapters (MCP, LangChain, OpenAI Agents, under ``plugins/``) only translate: they never validate
or decide on their own, because some frameworks hand tools raw, unchecked dicts. So every call goes
through :meth:`IntentTools.call`, which validates the arguments against the input model, applies
the operator's limits, and raises :class:`agent_il.errors.ToolError` (or another
:class:`agent_il.errors.AgentILError`) with a message written for the agent; adapters map that to
their own error result. This module imports no agent framework.

Learning is off unless the operator turns it on (``allow_learning=True``; ``agent-il serve
--allow-learning``): an agent that talks to untrusted users must not be able to rewrite what it
knows. When it is off, ``learn_intent`` is not offered at all, and calling it is refused;
``correct_intent`` is always offered, because then it only queues the correction for the operator's
review (:mod:`agent_il.inbox.review`); when learning is on, it learns it at once.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from agent_il.errors import AgentILError, ToolError
from agent_il.inbox import corrections
from agent_il.results import UNKNOWN, LearnReport
from agent_il.tools.models import (
    Classification,
    ClassifyIntentInput,
    CorrectIntentInput,
    CorrectionResult,
    IntentInfo,
    IntentList,
    LearnIntentInput,
    LearnResult,
    ListIntentsInput,
    TaskAccuracy,
    ToolLimits,
    ToolResult,
)
from agent_il.validation import MAX_LABEL_LENGTH

if TYPE_CHECKING:
    from agent_il.encoding.encoder import Encoder
    from agent_il.learner import IntentLearner

CLASSIFY_INTENT = "classify_intent"
LIST_INTENTS = "list_intents"
CORRECT_INTENT = "correct_intent"
LEARN_INTENT = "learn_intent"
TASK_PREFIX = "agent:"  # tasks added by learn_intent are named agent:LABEL, so the operator can tell them apart


@dataclass(frozen=True)
class ToolSpec:
    """One tool as every adapter presents it."""

    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[ToolResult]
    read_only: bool
    needs_learning: bool = False  # offered, and run, only when the operator allows learning


SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            CLASSIFY_INTENT,
            "Classify intent",
            "Classify what a user wants: the best-matching known intent (or 'unknown' when the message fits none), "
            "its confidence, the top-k intents, and the stored example messages the answer rests on.",
            ClassifyIntentInput,
            Classification,
            read_only=True,
        ),
        ToolSpec(
            LIST_INTENTS,
            "List intents",
            "List the intents this agent knows, with how many labelled examples each was learned from and the "
            "task that introduced it.",
            ListIntentsInput,
            IntentList,
            read_only=True,
        ),
        ToolSpec(
            CORRECT_INTENT,
            "Correct intent",
            "Report that a message was classified wrongly and name the known intent it meant (e.g. the user said "
            "'no, I meant ...'). Unless the operator lets this agent learn, the correction waits for the operator's "
            "review; the result says whether it was queued or learned. Use only when the user makes clear which "
            "intent they meant.",
            CorrectIntentInput,
            CorrectionResult,
            read_only=False,
        ),
        ToolSpec(
            LEARN_INTENT,
            "Learn intent",
            "Teach a new intent (or more examples of a known one) from example user messages, without forgetting "
            "the others. The state is snapshotted first; the result reports the held-out accuracy of earlier tasks "
            "before and after. Use only when the user explicitly asks to teach an intent.",
            LearnIntentInput,
            LearnResult,
            read_only=False,
            needs_learning=True,
        ),
    )
}


class IntentTools:
    """The tools over one workspace. Give an open :class:`IntentLearner`, or a workspace path that
    is opened on first use (``encoder`` shares an already loaded model). Calls may come from many
    threads (adapters run tools on worker threads; :meth:`acall` on one of its own): reads take
    turns on the learner's ``reading`` lock, writes on ``writing``, so a classify never waits for a
    learn and answers from the last committed generation (:mod:`agent_il.concurrency`). Several
    ``IntentTools`` over one learner (one per token scope) share those locks.

    ``inbox``: messages classified as ``unknown`` are kept in the workspace inbox, where the
    operator finds candidate new intents (``agent-il discover``); this changes nothing the agent
    knows. Turn it off where users' messages must not be stored."""

    def __init__(
        self,
        learner: IntentLearner | str | os.PathLike[str],
        *,
        allow_learning: bool = False,
        limits: ToolLimits | None = None,
        inbox: bool = True,
        encoder: Encoder | None = None,
    ) -> None:
        if isinstance(learner, str | os.PathLike):
            self._path: str | os.PathLike[str] | None = learner
            self._learner: IntentLearner | None = None
        else:
            self._path, self._learner = None, learner
        self.allow_learning = allow_learning is True
        self.limits = limits or ToolLimits()
        self.inbox = inbox is not False
        self._encoder = encoder
        self._lock = threading.RLock()

    @property
    def learner(self) -> IntentLearner:
        with self._lock:
            if self._learner is None:
                from agent_il.learner import IntentLearner

                self._learner = IntentLearner.open(self._path, encoder=self._encoder, create=False)
            return self._learner

    def close(self) -> None:
        """Close the learner if this object opened it."""
        with self._lock:
            if self._path is not None and self._learner is not None:
                self._learner.close()
                self._learner = None

    def __enter__(self) -> IntentTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def specs(self) -> list[ToolSpec]:
        """The tools this object offers: ``learn_intent`` only when learning is allowed, and
        ``correct_intent`` unless learning is off and users' messages must not be stored (``inbox=False``):
        then it could only keep them for review."""
        return [s for s in SPECS.values() if self._offered(s)]

    def _offered(self, spec: ToolSpec) -> bool:
        if spec.needs_learning:
            return self.allow_learning
        return spec.name != CORRECT_INTENT or self.allow_learning or self.inbox

    def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """Run tool ``name`` on raw arguments (as a framework hands them over): validate, check
        the limits, run. Refusals raise :class:`ToolError` and change nothing."""
        if not isinstance(name, str) or name not in SPECS:
            raise ToolError(f"no tool named {name!r}; tools are: {', '.join(s.name for s in self.specs())}")
        if SPECS[name].needs_learning and not self.allow_learning:
            raise ToolError(
                "learning is disabled: this agent cannot change what it knows. The operator can enable it "
                "(agent-il serve ... --allow-learning, or allow_learning=True)."
            )
        if not self._offered(SPECS[name]):
            raise ToolError(
                "corrections are off: this agent neither learns nor keeps users' messages for review "
                "(the operator serves it with --no-inbox)."
            )
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise ToolError(f"{name} takes an object of named arguments, got {type(arguments).__name__}")
        args = _validated(SPECS[name].input_model, arguments)
        run: Callable[..., ToolResult] = getattr(self, f"_{name}")
        learner = self.learner
        with learner.reading if SPECS[name].read_only else learner.writing:
            return run(**dict(args))

    async def acall(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """:meth:`call` on a worker thread, so an event loop keeps serving while a tool (a learn) runs.
        A write first waits for its turn on the loop (:meth:`IntentLearner.write_turn`), so writes
        queued behind a learn hold no worker thread that a classify needs."""
        spec = SPECS.get(name) if isinstance(name, str) else None
        if spec is None or spec.read_only:
            return await asyncio.to_thread(self.call, name, arguments)
        learner = await asyncio.to_thread(lambda: self.learner)  # opening a workspace path does I/O
        async with learner.write_turn():
            return await asyncio.to_thread(self.call, name, arguments)

    # Typed entry points for Python callers; they take the same path as an adapter's call.
    def classify_intent(self, text: str, k: int = 3) -> Classification:
        return self.call(CLASSIFY_INTENT, {"text": text, "k": k})  # type: ignore[return-value]

    def list_intents(self) -> IntentList:
        return self.call(LIST_INTENTS, {})  # type: ignore[return-value]

    def correct_intent(self, text: str, label: str) -> CorrectionResult:
        return self.call(CORRECT_INTENT, {"text": text, "label": label})  # type: ignore[return-value]

    def learn_intent(self, label: str, examples: list[str]) -> LearnResult:
        return self.call(LEARN_INTENT, {"label": label, "examples": examples})  # type: ignore[return-value]

    # ----------------------------------------------------------------- implementations
    def _text(self, text: str, what: str) -> str:
        if not text.strip():
            raise ToolError(f"{what} is empty or whitespace")
        if len(text) > self.limits.max_text_chars:
            raise ToolError(f"{what} has {len(text)} characters; the limit is {self.limits.max_text_chars}")
        return text

    def _classify_intent(self, text: str, k: int) -> Classification:
        text = self._text(text, "text")
        learner = self.learner
        if not learner.labels:
            raise ToolError("no intents have been learned yet, so there is nothing to classify against")
        p = learner.predict([text], k=k, evidence=self.limits.evidence, inbox=self.inbox)[0]
        return Classification.from_prediction(p, self.limits.max_text_chars)

    def _list_intents(self) -> IntentList:
        learner = self.learner
        tasks = learner.tasks
        counts = learner.exemplar_counts()
        examples: dict[str, int] = {}
        introduced: dict[str, tuple[str, int]] = {}
        for t in tasks:
            for label, n in t.counts.items():
                examples[label] = examples.get(label, 0) + n
            for label in t.new_classes:
                introduced.setdefault(label, (t.name, t.id))
        return IntentList(
            intents=[
                IntentInfo(
                    label=label,
                    examples=examples.get(label, 0),
                    exemplars=counts.get(label, 0),
                    task=introduced.get(label, ("", 0))[0],
                    task_id=introduced.get(label, ("", 0))[1],
                )
                for label in learner.labels
            ],
            tasks=len(tasks),
        )

    def _label(self, label: str) -> str:
        label = label.strip()
        if not label or not label.isprintable():
            raise ToolError("label must be a printable, non-empty name")
        if label.casefold() == UNKNOWN:
            raise ToolError(f"{UNKNOWN!r} is reserved for messages that fit no intent; choose another label")
        return label

    def _snapshot_first(self) -> str | None:
        """A named snapshot when the workspace keeps no automatic ones (else the learn takes one)."""
        if self.learner.config.auto_snapshots == 0:
            return self.learner.snapshot(datetime.now(timezone.utc).strftime("pre-learn-%Y%m%d-%H%M%S-%f")).name
        return None

    @staticmethod
    def _undo(report: LearnReport, snapshot: str | None) -> dict[str, Any]:
        """The snapshot, the command that undoes the learn and its forgetting check, as results give them."""
        if snapshot is None:
            snapshot = report.snapshot
        if snapshot is None:  # pragma: no cover - the learner snapshots whenever auto_snapshots > 0
            raise AgentILError("the learn committed without a snapshot")
        checks = [
            TaskAccuracy(task=a["task"], name=a["name"], before=a["before"], after=a["after"])
            for a in report.holdout_accuracy
        ]
        drops = [c.before - c.after for c in checks if c.before is not None]
        return {
            "snapshot": snapshot,
            "undo": "agent-il rollback" if report.snapshot else f"agent-il snapshot restore {snapshot}",
            "forgetting_check": checks,
            "largest_drop": max(0.0, *drops) if drops else None,
        }

    def _correct_intent(self, text: str, label: str) -> CorrectionResult:
        text, label = self._text(text, "text"), self._label(label)
        learner = self.learner
        if label not in learner.labels:  # not echoed: the agent's value, and list_intents has them all
            raise ToolError(
                "label must be a known intent (list_intents shows them): a correction names the intent a message meant"
            )
        if not self.allow_learning:
            out = corrections.correct(learner, [text], [label], review=True, sender="tool")
            return CorrectionResult(status="queued", label=label, predicted=out.predicted[0], review_id=out.ids[0])
        snapshot = self._snapshot_first()
        done = corrections.correct(learner, [text], [label], sender="tool")
        assert done.report is not None
        return CorrectionResult(
            status="learned",
            label=label,
            predicted=done.predicted[0],
            task=done.report.task.name,
            task_id=done.report.task.id,
            seconds=done.report.seconds,
            **self._undo(done.report, snapshot),
        )

    def _learn_intent(self, label: str, examples: list[str]) -> LearnResult:
        label = self._label(label)
        lim = self.limits
        if not lim.min_examples <= len(examples) <= lim.max_examples:
            raise ToolError(
                f"got {len(examples)} examples; give between {lim.min_examples} and {lim.max_examples} per call"
            )
        examples = [self._text(t, f"examples[{i}]") for i, t in enumerate(examples)]
        learner = self.learner
        new_intent = label not in learner.labels
        snapshot = self._snapshot_first()
        report = learner.learn(examples, [label] * len(examples), task=f"{TASK_PREFIX}{label}"[:MAX_LABEL_LENGTH])
        return LearnResult(
            label=label,
            new_intent=new_intent,
            examples=report.examples,
            task=report.task.name,
            task_id=report.task.id,
            intents_total=report.classes_total,
            exemplars_total=report.exemplars_total,
            seconds=report.seconds,
            **self._undo(report, snapshot),
        )


def validation_message(exc: ValidationError) -> str:
    """One line naming each bad field and what is wrong, without echoing the values (they are the
    caller's, possibly long, data). Adapters whose framework validates first reuse it."""
    problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors())
    return f"invalid arguments: {problems}"


def _validated(model: type[BaseModel], arguments: Mapping[str, Any]) -> BaseModel:
    try:
        return model.model_validate(dict(arguments))
    except ValidationError as exc:
        raise ToolError(validation_message(exc)) from None
