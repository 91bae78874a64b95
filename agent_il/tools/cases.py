"""The calls the adapter contract (:mod:`agent_il.tools.checks`) makes through a framework: valid
arguments for the read tools, and the calls that must be refused, each with what the refusal must
name and must not echo. Kept apart from the checks so either stays readable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_il.tools.models import ToolLimits
from agent_il.tools.surface import CLASSIFY_INTENT, CORRECT_INTENT, LEARN_INTENT, LIST_INTENTS

# Limits other than the defaults, so that an adapter which builds its own IntentTools (and so
# ignores the operator's limits) gives other results and fails.
LIMITS = ToolLimits(max_text_chars=64, min_examples=3, max_examples=5, evidence=2)
SECRET = "zq7-callers-private-value"  # a refusal that contains it echoed the caller's data
SECRET_NUMBER = 7391846205
UNKNOWN_ARGUMENT = "zz_not_an_argument"
CHECK_LABEL = "zz_adapter_contract_check"
EXAMPLES = ["check the adapter contract please", "run the adapter contract check", "does the adapter keep its contract"]
TOO_LONG = f"{SECRET} " + "x" * LIMITS.max_text_chars
CORRECTION = "zz adapter contract check of a correction"


def read_samples(text: str) -> dict[str, list[dict[str, Any]]]:
    """Valid arguments for each read tool: non-default ``k`` catches an adapter that drops an
    argument; an omitted ``k`` one that does not apply the surface's default."""
    return {CLASSIFY_INTENT: [{"text": text, "k": 2}, {"text": text}], LIST_INTENTS: [{}]}


@dataclass(frozen=True)
class Refusal:
    """A call the adapter must refuse: with a message naming ``argument``, not containing ``secret``,
    and mentioning ``mention`` when given (a limit the agent needs to know to try again)."""

    tool: str
    arguments: dict[str, Any]
    argument: str
    secret: str
    mention: str | None = None


def read_refusals(text: str) -> list[Refusal]:
    return [
        Refusal(CLASSIFY_INTENT, {"text": text, UNKNOWN_ARGUMENT: SECRET}, UNKNOWN_ARGUMENT, SECRET),
        Refusal(LIST_INTENTS, {UNKNOWN_ARGUMENT: SECRET}, UNKNOWN_ARGUMENT, SECRET),
        Refusal(CLASSIFY_INTENT, {"text": SECRET_NUMBER}, "text", str(SECRET_NUMBER)),
        Refusal(CLASSIFY_INTENT, {"text": text, "k": SECRET}, "k", SECRET),
        Refusal(CLASSIFY_INTENT, {"text": TOO_LONG}, "text", SECRET, str(LIMITS.max_text_chars)),
    ]


LEARN_REFUSALS = [
    Refusal(
        LEARN_INTENT, {"label": CHECK_LABEL, "examples": EXAMPLES, UNKNOWN_ARGUMENT: SECRET}, UNKNOWN_ARGUMENT, SECRET
    ),
    Refusal(LEARN_INTENT, {"label": CHECK_LABEL, "examples": SECRET}, "examples", SECRET),
    Refusal(LEARN_INTENT, {"label": SECRET_NUMBER, "examples": EXAMPLES}, "label", str(SECRET_NUMBER)),
    Refusal(
        LEARN_INTENT,
        {"label": CHECK_LABEL, "examples": [*EXAMPLES, TOO_LONG]},
        "examples",
        SECRET,
        str(LIMITS.max_text_chars),
    ),
]


def correction_refusals(label: str) -> list[Refusal]:
    """Invalid correct_intent calls (``label``: a known intent), refused whether learning is on or off."""
    return [
        Refusal(
            CORRECT_INTENT, {"text": CORRECTION, "label": label, UNKNOWN_ARGUMENT: SECRET}, UNKNOWN_ARGUMENT, SECRET
        ),
        Refusal(CORRECT_INTENT, {"text": SECRET_NUMBER, "label": label}, "text", str(SECRET_NUMBER)),
        Refusal(CORRECT_INTENT, {"text": CORRECTION, "label": SECRET_NUMBER}, "label", str(SECRET_NUMBER)),
        Refusal(CORRECT_INTENT, {"text": TOO_LONG, "label": label}, "text", SECRET, str(LIMITS.max_text_chars)),
        Refusal(CORRECT_INTENT, {"text": CORRECTION, "label": CHECK_LABEL}, "label", CHECK_LABEL),  # no such intent
    ]
