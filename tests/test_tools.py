"""The framework-neutral tool surface (agent_il.tools) on a really learned workspace: what it
offers, its own validation of raw arguments, its limits, and learning (off unless enabled)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_il import IntentLearner
from agent_il.errors import InvalidInputError, ToolError
from agent_il.results import UNKNOWN, Prediction
from agent_il.tools.models import Classification, LearnResult, ToolLimits
from agent_il.tools.surface import CLASSIFY_INTENT, CORRECT_INTENT, LEARN_INTENT, LIST_INTENTS, IntentTools

PIZZA = [
    "i want to order a pizza",
    "can you get me a large pepperoni pizza delivered",
    "order two margherita pizzas for tonight",
    "i'd like a pizza with extra cheese please",
    "get a veggie pizza delivered to my house",
    "place an order for a pizza from dominos",
]


@pytest.fixture(scope="module")
def tools(learned_home: Path, tool_encoder) -> Iterator[IntentTools]:
    with IntentTools(IntentLearner.open(learned_home, encoder=tool_encoder)) as t:
        yield t
        t.learner.close()


def test_learning_is_off_by_default_and_read_tools_are_read_only(tools: IntentTools) -> None:
    assert not tools.allow_learning
    offered = [(s.name, s.read_only) for s in tools.specs()]
    assert offered == [(CLASSIFY_INTENT, True), (LIST_INTENTS, True), (CORRECT_INTENT, False)]  # it only queues
    enabled = IntentTools(tools.learner, allow_learning=True)
    assert [(s.name, s.read_only) for s in enabled.specs()][-1] == (LEARN_INTENT, False)
    assert IntentTools(tools.learner, allow_learning="yes").allow_learning is False  # type: ignore[arg-type]


def test_classify_routes_held_out_messages_with_evidence(tools: IntentTools, quickstart) -> None:
    texts, labels = (column[::12] for column in quickstart["test"])  # 31 messages no learn saw
    results = [tools.classify_intent(t, k=3) for t in texts]
    hits = sum(r.top_k[0].label == y for r, y in zip(results, labels))  # routing, whatever the rejection says
    assert hits >= 0.9 * len(texts), f"{hits}/{len(texts)}"
    assert all(r.label == (r.top_k[0].label if r.known else "unknown") for r in results)
    res = tools.classify_intent("i need to pay my water bill", k=2)
    assert isinstance(res, Classification) and res.known
    assert res.label == res.top_k[0].label == "pay_bill" and res.confidence == res.top_k[0].confidence
    assert len(res.top_k) == 2 and res.top_k[0].confidence >= res.top_k[1].confidence
    assert len(res.evidence) == tools.limits.evidence and res.evidence[0].label == "pay_bill"
    assert res.evidence[0].text and res.evidence[0].task == "banking" and 0 < res.evidence[0].similarity <= 1 + 1e-5
    assert res.summary().startswith("pay_bill (confidence ")
    assert res.model_dump()["top_k"][0] == {"label": "pay_bill", "confidence": res.confidence}


def test_list_intents_counts_and_origin(tools: IntentTools, quickstart) -> None:
    out = tools.list_intents()
    banking, travel = Counter(quickstart["banking"][1]), Counter(quickstart["travel"][1])
    assert out.tasks == 2 and len(out.intents) == len(banking) + len(travel) == 12
    by_label = {i.label: i for i in out.intents}
    assert sorted(i.label for i in out.intents if i.task == "banking") == sorted(banking)
    assert all(by_label[y].task_id == 1 and by_label[y].examples == n for y, n in banking.items())
    assert all(by_label[y].task == "travel" and by_label[y].examples == n for y, n in travel.items())
    assert all(0 < i.exemplars <= 20 for i in out.intents)
    assert out.summary().startswith("12 intents: ")


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        (CLASSIFY_INTENT, {}, "text: Field required"),
        (CLASSIFY_INTENT, {"text": 42}, "text: Input should be a valid string"),
        (CLASSIFY_INTENT, {"text": ""}, "text: String should have at least 1 character"),
        (CLASSIFY_INTENT, {"text": "   "}, "text is empty or whitespace"),
        (CLASSIFY_INTENT, {"text": "hi", "k": 0}, "k: Input should be greater than or equal to 1"),
        (CLASSIFY_INTENT, {"text": "hi", "k": 21}, "k: Input should be less than or equal to 20"),
        (CLASSIFY_INTENT, {"text": "hi", "k": "three"}, "k: Input should be a valid integer"),
        (CLASSIFY_INTENT, {"text": "hi", "top_k": 3}, "top_k: Extra inputs are not permitted"),
        (CLASSIFY_INTENT, {"text": "x" * 1001}, "text has 1001 characters; the limit is 1000"),
        (CLASSIFY_INTENT, ["hi"], "classify_intent takes an object of named arguments, got list"),
        (LIST_INTENTS, {"all": True}, "all: Extra inputs are not permitted"),
        (CORRECT_INTENT, {"text": "hi"}, "label: Field required"),
        (CORRECT_INTENT, {"text": "hi", "label": "no_such_intent"}, "label must be a known intent (list_intents"),
        (CORRECT_INTENT, {"text": "hi", "label": "Unknown"}, "'unknown' is reserved"),
        (CORRECT_INTENT, {"text": " ", "label": "pay_bill"}, "text is empty or whitespace"),
        (CORRECT_INTENT, {"text": "x" * 1001, "label": "pay_bill"}, "text has 1001 characters; the limit is 1000"),
        (CORRECT_INTENT, {"text": "hi", "label": "pay_bill", "was": "x"}, "was: Extra inputs are not permitted"),
        (
            "delete_everything",
            {},
            "no tool named 'delete_everything'; tools are: classify_intent, list_intents, correct_intent",
        ),
    ],
)
def test_raw_arguments_are_validated(tools: IntentTools, name: str, arguments: object, message: str) -> None:
    with pytest.raises(ToolError, match=re.escape(message)):
        tools.call(name, arguments)  # type: ignore[arg-type]
    assert not tools.learner.inbox.corrections.ids()  # a refused correction is not queued either


def test_learning_refused_when_not_enabled(tools: IntentTools) -> None:
    generation = tools.learner.state.generation
    with pytest.raises(ToolError, match="learning is disabled"):
        tools.call(LEARN_INTENT, {"label": "order_pizza", "examples": PIZZA})
    with pytest.raises(ToolError, match="learning is disabled"):
        tools.learn_intent("order_pizza", PIZZA)
    assert tools.learner.state.generation == generation and "order_pizza" not in tools.learner.labels


def test_learn_intent_snapshots_first_and_checks_forgetting(fresh_home: Path, tool_encoder) -> None:
    with IntentTools(fresh_home, allow_learning=True, encoder=tool_encoder) as tools:
        before = tools.classify_intent("order me a pizza please")
        assert (before.label, before.known) == ("unknown", False)  # out of scope: no intent fits it yet
        res = tools.call(LEARN_INTENT, {"label": " order_pizza ", "examples": PIZZA})
        assert isinstance(res, LearnResult)
        assert res.label == "order_pizza" and res.new_intent and res.examples == len(PIZZA)
        assert (res.task, res.task_id, res.intents_total) == ("agent:order_pizza", 3, 13)
        assert res.snapshot.startswith("auto-") and res.undo == "agent-il rollback"
        assert res.snapshot in [s.name for s in tools.learner.snapshots.list()]
        assert [(c.task, c.name) for c in res.forgetting_check] == [(1, "banking"), (2, "travel")]
        assert all(c.before is not None and c.before >= 90 for c in res.forgetting_check)
        assert res.largest_drop is not None and 0 <= res.largest_drop <= 5
        assert "order_pizza" in res.summary() and "undo: agent-il rollback" in res.summary()
        after = tools.classify_intent("order me a pizza please")
        assert (after.label, after.known, after.top_k[0].label) == ("order_pizza", True, "order_pizza")
        assert tools.classify_intent("i need to pay my water bill").label == "pay_bill"

        more = tools.learn_intent("order_pizza", ["could you order pizza for the office", *PIZZA[:2]])
        assert not more.new_intent and more.intents_total == 13
        tools.learner.rollback()
        tools.learner.rollback()
        assert "order_pizza" not in tools.list_intents().summary()


def test_out_of_scope_messages_are_unknown_and_kept_in_the_inbox_unless_told(fresh_home: Path, tool_encoder) -> None:
    with IntentTools(fresh_home, encoder=tool_encoder) as tools:
        before = len(tools.learner.inbox.items().ids)
        joke = tools.classify_intent("tell me a joke about penguins")
        assert (joke.label, joke.known) == ("unknown", False) and joke.score is not None
        assert joke.summary().startswith("unknown: the text matches no known intent; closest known intent ")
        assert len(tools.learner.inbox.items().ids) == before + 1  # for the operator's agent-il discover
        quiet = IntentTools(tools.learner, inbox=False)
        assert quiet.classify_intent("what is the meaning of life").label == "unknown"
        assert len(tools.learner.inbox.items().ids) == before + 1
        # nor are corrections kept for review: without learning, correct_intent is not offered
        assert "correct_intent" not in [s.name for s in quiet.specs()]
        label = tools.list_intents().intents[0].label
        with pytest.raises(ToolError, match="corrections are off"):
            quiet.call("correct_intent", {"text": "tell me a joke", "label": label})
        assert tools.learner.inbox.corrections.items() == []
        learning = IntentTools(tools.learner, inbox=False, allow_learning=True)
        assert "correct_intent" in [s.name for s in learning.specs()]


def test_limits_refuse_and_change_nothing(fresh_home: Path, tool_encoder) -> None:
    limits = ToolLimits(max_text_chars=60, min_examples=2, max_examples=4)
    with IntentTools(fresh_home, allow_learning=True, encoder=tool_encoder, limits=limits) as tools:
        generation = tools.learner.state.generation
        cases = [
            ({"label": "order_pizza", "examples": PIZZA[:1]}, "got 1 examples; give between 2 and 4 per call"),
            ({"label": "order_pizza", "examples": PIZZA[:5]}, "got 5 examples; give between 2 and 4 per call"),
            ({"label": "order_pizza", "examples": [PIZZA[0], "pizza " * 11]}, "examples.1. has 66 characters"),
            ({"label": "order_pizza", "examples": [PIZZA[0], " "]}, r"examples.1. is empty or whitespace"),
            ({"label": "order_pizza", "examples": "i want pizza"}, "examples: Input should be a valid list"),
            ({"label": "Unknown", "examples": PIZZA[:2]}, "'unknown' is reserved"),
            ({"label": "   ", "examples": PIZZA[:2]}, "label must be a printable, non-empty name"),
            ({"label": "x" * 101, "examples": PIZZA[:2]}, "label: String should have at most 100 characters"),
            ({"label": "order_pizza"}, "examples: Field required"),
        ]
        for arguments, message in cases:
            with pytest.raises(ToolError, match=message):
                tools.call(LEARN_INTENT, arguments)
        assert tools.learner.state.generation == generation


def test_without_automatic_snapshots_a_named_one_is_taken(tmp_path: Path, tool_encoder, quickstart) -> None:
    texts, labels = quickstart["banking"]
    IntentLearner.open(tmp_path / "kb", encoder=tool_encoder, auto_snapshots=0).close()
    with IntentTools(tmp_path / "kb", allow_learning=True, encoder=tool_encoder) as tools:
        with pytest.raises(ToolError, match="no intents have been learned yet"):
            tools.classify_intent("hello")
        tools.learner.learn(texts, labels, task="banking")
        res = tools.learn_intent("order_pizza", PIZZA)
        assert res.snapshot.startswith("pre-learn-") and res.undo == f"agent-il snapshot restore {res.snapshot}"
        assert res.forgetting_check == [] and res.largest_drop is None
        assert [s.name for s in tools.learner.snapshots.list()] == [res.snapshot]
        tools.learner.restore(res.snapshot)
        assert "order_pizza" not in tools.learner.labels and len(tools.learner.labels) == 6


def test_limits_are_checked() -> None:
    for bad in (
        {"max_text_chars": 0},
        {"min_examples": 5, "max_examples": 4},
        {"evidence": -1},
        {"max_examples": True},
    ):
        with pytest.raises(InvalidInputError):
            ToolLimits(**bad)  # type: ignore[arg-type]


def test_an_out_of_scope_prediction_is_reported_as_unknown() -> None:
    rejected = Prediction(
        label=UNKNOWN, confidence=0.31, top_k=[("pay_bill", 0.31)], evidence=[], known=False, score=0.2
    )
    out = Classification.from_prediction(rejected)
    assert (out.label, out.known, out.score, out.top_k[0].label) == ("unknown", False, 0.2, "pay_bill")
    assert out.summary() == "unknown: the text matches no known intent; closest known intent pay_bill (0.31)"
    kept_label = Prediction(label="pay_bill", confidence=0.31, top_k=[("pay_bill", 0.31)], evidence=[], known=False)
    assert Classification.from_prediction(kept_label).label == "unknown"
