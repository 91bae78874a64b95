"""The tools' data: what a call may ask for (:class:`ToolLimits`), the pydantic models of each
tool's arguments and result. Adapters publish these models as their framework's schemas, so the
schema an agent sees is the one the core validates against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent_il import validation
from agent_il.errors import InvalidInputError
from agent_il.results import UNKNOWN, Prediction
from agent_il.validation import MAX_LABEL_LENGTH

MAX_K = 20


@dataclass(frozen=True)
class ToolLimits:
    """What one tool call may ask for. The defaults fit intent utterances (CLINC150's longest
    is under 200 characters); an operator serving longer texts raises them."""

    max_text_chars: int = 1000  # per text to classify and per example to learn
    min_examples: int = 3  # an intent taught from one or two sentences is a guess
    max_examples: int = 100  # per learn_intent call
    evidence: int = 3  # stored examples returned with each classification

    def __post_init__(self) -> None:
        for name in ("min_examples", "max_examples"):
            validation.positive_int(getattr(self, name), name)
        validation.positive_int(self.max_text_chars, "max_text_chars", validation.MAX_TEXT_CHARS_LIMIT)
        if self.min_examples > self.max_examples:
            raise InvalidInputError(f"min_examples ({self.min_examples}) is above max_examples ({self.max_examples})")
        validation.non_negative_int(self.evidence, "evidence")


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


class CorrectIntentInput(_Input):
    text: str = Field(min_length=1, description="The user's message that was classified wrongly, as they wrote it.")
    label: str = Field(
        min_length=1,
        max_length=MAX_LABEL_LENGTH,
        description="The known intent the message meant (list_intents shows them), e.g. 'cancel_subscription'.",
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
    def from_prediction(cls, p: Prediction, max_text_chars: int | None = None) -> Classification:
        """``max_text_chars``: evidence texts are cut to it (the tools' limit on a text)."""
        known = bool(getattr(p, "known", True))
        return cls(
            label=p.label if known else UNKNOWN,
            known=known,
            confidence=p.confidence,
            score=getattr(p, "score", None),
            top_k=[IntentScore(label=label, confidence=c) for label, c in p.top_k],
            evidence=[
                EvidenceItem(
                    text=validation.cut(e.text, max_text_chars), label=e.label, task=e.task, similarity=e.similarity
                )
                for e in p.evidence
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


class CorrectionResult(ToolResult):
    status: Literal["queued", "learned"] = Field(
        description="queued: it waits for the operator's review; learned: learned now, as the operator allows."
    )
    label: str = Field(description="The intent the message meant.")
    predicted: str = Field(
        description=f"What the message was classified as before the correction ('{UNKNOWN}' if no intent fitted)."
    )
    review_id: str | None = Field(None, description="Its id in the operator's review queue, when queued.")
    task: str | None = Field(None, description="Name of the task the learn recorded (feedback:DATE), when learned.")
    task_id: int | None = None
    snapshot: str | None = Field(None, description="Snapshot of the state before the learn, when learned.")
    undo: str | None = Field(None, description="The operator's command that undoes the learn, when learned.")
    forgetting_check: list[TaskAccuracy] = Field(
        default_factory=list, description="When learned: held-out accuracy of every earlier task, before and after."
    )
    largest_drop: float | None = Field(
        None, description="When learned: largest fall in held-out accuracy (percentage points) of an earlier task."
    )
    seconds: float | None = Field(None, description="How long the learn took, when learned.")

    def summary(self) -> str:
        if self.status == "queued":
            return (
                f"correction to {self.label!r} (was {self.predicted}) queued for the operator's review "
                f"as {self.review_id}; it is not learned until accepted"
            )
        text = f"learned the correction to {self.label!r} (was {self.predicted})"
        if self.largest_drop is not None:
            text += f"; earlier tasks lost at most {self.largest_drop:.1f} points of held-out accuracy"
        return f"{text}; snapshot {self.snapshot} (undo: {self.undo})"
