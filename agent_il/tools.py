"""The one tool surface every agent-framework adapter wraps: names, descriptions, pydantic input
and output models, and the functions behind them.

Adapters (MCP, LangChain, OpenAI Agents, under ``plugins/``) only translate: they never validate
or decide on their own, because some frameworks hand tools raw, unchecked dicts. So every call goes
through :meth:`IntentTools.call`, which validates the arguments against the input model, applies
the operator's limits, and raises :class:`agent_il.errors.ToolError` (or another
:class:`agent_il.errors.AgentILError`) with a message written for the agent; adapters map that to
their own error result. This module imports no agent framework.

Learning is off unless the operator turns it on (``allow_learning=True``; ``agent-il serve
--allow-learning``): an agent that talks to untrusted users must not be able to rewrite what it
knows. When it is off, ``learn_intent`` is not offered at all, and calling it is refused.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_il.errors import AgentILError, InvalidInputError, ToolError
from agent_il.results import UNKNOWN, Prediction
from agent_il.validation import MAX_LABEL_LENGTH

if TYPE_CHECKING:
    from agent_il.encoder import Encoder
    from agent_il.learner import IntentLearner

CLASSIFY_INTENT = "classify_intent"
LIST_INTENTS = "list_intents"
LEARN_INTENT = "learn_intent"
MAX_K = 20
ADAPTER_GROUP = "agent_il.adapters"  # entry-point group under which adapter distributions register
DEFAULT_PORT = 8765  # not 8000: that is where `chroma run` listens by default
TASK_PREFIX = "agent:"  # tasks added by learn_intent are named agent:LABEL, so the operator can tell them apart


@dataclass(frozen=True)
class ToolLimits:
    """What one tool call may ask for. The defaults fit intent utterances (CLINC150's longest
    is under 200 characters); an operator serving longer texts raises them."""

    max_text_chars: int = 1000  # per text to classify and per example to learn
    min_examples: int = 3  # an intent taught from one or two sentences is a guess
    max_examples: int = 100  # per learn_intent call
    evidence: int = 3  # stored examples returned with each classification

    def __post_init__(self) -> None:
        for name in ("max_text_chars", "min_examples", "max_examples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        if self.min_examples > self.max_examples:
            raise InvalidInputError(f"min_examples ({self.min_examples}) is above max_examples ({self.max_examples})")
        if isinstance(self.evidence, bool) or not isinstance(self.evidence, int) or self.evidence < 0:
            raise InvalidInputError(f"evidence must be a non-negative integer, got {self.evidence!r}")


# --------------------------------------------------------------------------- inputs
class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt argument is an error, not silently dropped


class ClassifyIntentInput(_Input):
    text: str = Field(min_length=1, description="The user's message to classify, as they wrote it.")
    k: int = Field(3, ge=1, le=MAX_K, description="How many ranked intents to return.")


class ListIntentsInput(_Input):
    pass


class LearnIntentInput(_Input):
    label: str = Field(
        min_length=1,
        max_length=MAX_LABEL_LENGTH,
        description="Name of the intent, in snake_case, e.g. 'cancel_subscription'. A known label gets more examples.",
    )
    examples: list[str] = Field(
        min_length=1, description="Example user messages that mean this intent, each a different phrasing."
    )


# --------------------------------------------------------------------------- outputs
class ToolResult(BaseModel):
    """Every tool's output: the full result as fields, and a one-line ``summary()`` for a model
    that only needs the answer (LangChain puts it in the message and the result in the artifact)."""

    def summary(self) -> str:
        return self.model_dump_json()


class IntentScore(BaseModel):
    label: str
    confidence: float = Field(description="Probability in [0, 1].")


class EvidenceItem(BaseModel):
    text: str | None = Field(description="A stored example the answer rests on.")
    label: str
    task: str = Field(description="The task that stored it.")
    similarity: float = Field(description="Cosine similarity to the classified text.")


class Classification(ToolResult):
    label: str = Field(description=f"The best intent, or '{UNKNOWN}' when the text fits no known intent.")
    known: bool = Field(description=f"False when the text was rejected as out of scope (label '{UNKNOWN}').")
    confidence: float = Field(description="Probability of the best known intent, in [0, 1].")
    score: float | None = Field(None, description="The in-scope score the out-of-scope check used, if any.")
    top_k: list[IntentScore] = Field(description="Known intents, best first.")
    evidence: list[EvidenceItem] = Field(description="Nearest stored examples, most similar first.")

    @classmethod
    def from_prediction(cls, p: Prediction) -> Classification:
        known = bool(getattr(p, "known", True))
        return cls(
            label=p.label if known else UNKNOWN,
            known=known,
            confidence=p.confidence,
            score=getattr(p, "score", None),
            top_k=[IntentScore(label=label, confidence=c) for label, c in p.top_k],
            evidence=[
                EvidenceItem(text=e.text, label=e.label, task=e.task, similarity=e.similarity) for e in p.evidence
            ],
        )

    def summary(self) -> str:
        if not self.known:
            closest = (
                f"; closest known intent {self.top_k[0].label} ({self.top_k[0].confidence:.2f})" if self.top_k else ""
            )
            return f"{UNKNOWN}: the text matches no known intent{closest}"
        others = ", ".join(f"{s.label} {s.confidence:.2f}" for s in self.top_k[1:])
        return f"{self.label} (confidence {self.confidence:.2f})" + (f"; next: {others}" if others else "")


class IntentInfo(BaseModel):
    label: str
    examples: int = Field(description="Labelled examples learned for this intent, over all tasks.")
    exemplars: int = Field(description="Examples kept in the memory as evidence.")
    task: str = Field(description="Name of the task that introduced the intent.")
    task_id: int


class IntentList(ToolResult):
    intents: list[IntentInfo] = Field(description="Known intents, in the order they were learned.")
    tasks: int = Field(description="Number of learns (tasks) so far.")

    def summary(self) -> str:
        if not self.intents:
            return "no intents learned yet"
        return f"{len(self.intents)} intents: " + ", ".join(i.label for i in self.intents)


class TaskAccuracy(BaseModel):
    task: int
    name: str
    before: float | None = Field(description="Held-out accuracy (%) of the task before this learn.")
    after: float = Field(description="Held-out accuracy (%) of the task after this learn.")


class LearnResult(ToolResult):
    label: str
    new_intent: bool = Field(description="True if the label was not known before.")
    examples: int = Field(description="Examples learned.")
    task: str = Field(description="Name of the task this learn recorded.")
    task_id: int
    intents_total: int
    exemplars_total: int
    snapshot: str = Field(description="Snapshot of the state before this learn.")
    undo: str = Field(description="The operator's command that undoes this learn.")
    forgetting_check: list[TaskAccuracy] = Field(
        description="Held-out accuracy of every earlier task with a test slice, before and after."
    )
    largest_drop: float | None = Field(
        description="Largest fall in held-out accuracy (percentage points) of an earlier task; None: no test slices."
    )
    seconds: float

    def summary(self) -> str:
        what = "new intent" if self.new_intent else "more examples of known intent"
        text = f"learned {what} {self.label!r} from {self.examples} examples"
        if self.largest_drop is not None:
            text += f"; earlier tasks lost at most {self.largest_drop:.1f} points of held-out accuracy"
        return f"{text}; snapshot {self.snapshot} (undo: {self.undo})"


# --------------------------------------------------------------------------- the surface
@dataclass(frozen=True)
class ToolSpec:
    """One tool as every adapter presents it."""

    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[ToolResult]
    read_only: bool


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
            LEARN_INTENT,
            "Learn intent",
            "Teach a new intent (or more examples of a known one) from example user messages, without forgetting "
            "the others. The state is snapshotted first; the result reports the held-out accuracy of earlier tasks "
            "before and after. Use only when the user explicitly asks to teach an intent.",
            LearnIntentInput,
            LearnResult,
            read_only=False,
        ),
    )
}


class IntentTools:
    """The tools over one workspace. Give an open :class:`IntentLearner`, or a workspace path that
    is opened on first use (``encoder`` shares an already loaded model). Calls are serialised:
    one learner is not meant to be used from several threads at once, and adapters run tools on
    worker threads.

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
        """The tools this object offers: ``learn_intent`` only when learning is allowed."""
        return [s for s in SPECS.values() if s.read_only or self.allow_learning]

    def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """Run tool ``name`` on raw arguments (as a framework hands them over): validate, check
        the limits, run. Refusals raise :class:`ToolError` and change nothing."""
        if not isinstance(name, str) or name not in SPECS:
            raise ToolError(f"no tool named {name!r}; tools are: {', '.join(s.name for s in self.specs())}")
        if name == LEARN_INTENT and not self.allow_learning:
            raise ToolError(
                "learning is disabled: this agent cannot change what it knows. The operator can enable it "
                "(agent-il serve ... --allow-learning, or allow_learning=True)."
            )
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise ToolError(f"{name} takes an object of named arguments, got {type(arguments).__name__}")
        args = _validated(SPECS[name].input_model, arguments)
        run: Callable[..., ToolResult] = getattr(self, f"_{name}")
        with self._lock:
            return run(**dict(args))

    # Typed entry points for Python callers; they take the same path as an adapter's call.
    def classify_intent(self, text: str, k: int = 3) -> Classification:
        return self.call(CLASSIFY_INTENT, {"text": text, "k": k})  # type: ignore[return-value]

    def list_intents(self) -> IntentList:
        return self.call(LIST_INTENTS, {})  # type: ignore[return-value]

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
        return Classification.from_prediction(p)

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

    def _learn_intent(self, label: str, examples: list[str]) -> LearnResult:
        label = label.strip()
        if not label or not label.isprintable():
            raise ToolError("label must be a printable, non-empty name")
        if label.casefold() == UNKNOWN:
            raise ToolError(f"{UNKNOWN!r} is reserved for messages that fit no intent; choose another label")
        lim = self.limits
        if not lim.min_examples <= len(examples) <= lim.max_examples:
            raise ToolError(
                f"got {len(examples)} examples; give between {lim.min_examples} and {lim.max_examples} per call"
            )
        examples = [self._text(t, f"examples[{i}]") for i, t in enumerate(examples)]
        learner = self.learner
        new_intent = label not in learner.labels
        snapshot = None
        if learner.state["auto_snapshots"] == 0:  # the workspace keeps no automatic snapshots: take one
            snapshot = learner.snapshot(datetime.now(timezone.utc).strftime("pre-learn-%Y%m%d-%H%M%S-%f")).name
        report = learner.learn(examples, [label] * len(examples), task=f"{TASK_PREFIX}{label}"[:MAX_LABEL_LENGTH])
        if snapshot is None:
            snapshot = report.snapshot
        if snapshot is None:  # pragma: no cover - the learner snapshots whenever auto_snapshots > 0
            raise AgentILError("the learn committed without a snapshot")
        checks = [
            TaskAccuracy(task=a["task"], name=a["name"], before=a["before"], after=a["after"])
            for a in report.holdout_accuracy
        ]
        drops = [c.before - c.after for c in checks if c.before is not None]
        return LearnResult(
            label=label,
            new_intent=new_intent,
            examples=report.examples,
            task=report.task.name,
            task_id=report.task.id,
            intents_total=report.classes_total,
            exemplars_total=report.exemplars_total,
            snapshot=snapshot,
            undo="agent-il rollback" if report.snapshot else f"agent-il snapshot restore {snapshot}",
            forgetting_check=checks,
            largest_drop=max(0.0, *drops) if drops else None,
            seconds=report.seconds,
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


# --------------------------------------------------------------------------- adapters
@dataclass(frozen=True)
class ServeOptions:
    transport: str  # one of the adapter's transports
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT


@dataclass(frozen=True)
class Adapter:
    """What an adapter distribution registers under the ``agent_il.adapters`` entry-point group.
    ``serve`` is given for adapters that run a server (``agent-il serve NAME``); library adapters
    (a toolkit to import) leave it out. Its module should import its framework lazily, so that
    ``agent-il plugins`` stays fast."""

    name: str
    description: str
    transports: tuple[str, ...] = ()
    serve: Callable[[IntentTools, ServeOptions], None] | None = field(default=None, compare=False)
