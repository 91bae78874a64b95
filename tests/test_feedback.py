"""Learning from corrections ("no, I meant X") on a really learned workspace: an agent's correction
waits for review (agent-il inbox accept / reject), the operator's is learned at once (agent-il
feedback, learn --corrections), and either way a misclassified message is then classified right,
with the forgetting check reported and the examples kept as source=feedback."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent_il import IntentLearner
from agent_il.cli import app
from agent_il.errors import InvalidInputError, ToolError
from agent_il.inbox import corrections
from agent_il.tools.models import CorrectionResult
from agent_il.tools.surface import CORRECT_INTENT, IntentTools

# Messages of the quick-start test split. The learned workspace (banking, then travel) answers the
# first right; the last two it gets wrong (its best known intent is another one) and rejects as
# unknown.
FREEZE = "can you freeze my bank account"  # answered freeze_account
UNLOCK = "can you unlock my bank account"  # taken for freeze_account
RENAME = "i would like to change the name on my checking account"  # taken for freeze_account
TODAY = datetime.now(timezone.utc).strftime("feedback:%Y-%m-%d")


def best(tools: IntentTools, text: str) -> tuple[str, bool]:
    res = tools.classify_intent(text, k=1)
    return res.top_k[0].label, res.known


def feedback_examples(learner: IntentLearner, text: str) -> list:
    return [e for e in learner.examples() if e.text == text]


def test_an_agents_correction_waits_for_review_then_is_learned(fresh_home: Path, tool_encoder) -> None:
    with IntentTools(fresh_home, encoder=tool_encoder) as tools:  # learning off: the default
        learner = tools.learner
        assert CORRECT_INTENT in [s.name for s in tools.specs()]
        assert best(tools, UNLOCK) == ("freeze_account", False)  # misclassified (and kept as an unknown)
        assert UNLOCK in learner.inbox.items().texts
        generation = learner.state.generation

        res = tools.call(CORRECT_INTENT, {"text": UNLOCK, "label": " account_blocked "})
        assert isinstance(res, CorrectionResult)
        assert (res.status, res.label, res.predicted) == ("queued", "account_blocked", "unknown")
        assert res.review_id is not None and res.review_id.startswith("fb-") and res.snapshot is None
        assert "queued for the operator's review" in res.summary() and res.review_id in res.summary()
        assert tools.correct_intent(UNLOCK, "account_blocked").review_id == res.review_id  # waits once
        (pending,) = learner.inbox.corrections.items()
        assert (pending.id, pending.text, pending.label) == (res.review_id, UNLOCK, "account_blocked")
        assert (pending.predicted, pending.sender) == ("unknown", "tool") and pending.time > 0
        assert learner.state.generation == generation and best(tools, UNLOCK)[0] == "freeze_account"  # not learned
        assert UNLOCK in learner.inbox.items().texts and res.review_id not in learner.inbox.items().ids
        assert all(res.review_id not in c.ids for c in learner.inbox.discover(min_size=1))  # not an unknown
        for label, message in (("open_account", "label must be a known intent"), ("unknown", "is reserved")):
            with pytest.raises(ToolError, match=message):
                tools.correct_intent(UNLOCK, label)
        assert len(learner.inbox.corrections.items()) == 1

        out = corrections.accept(learner, [res.review_id])
        assert out.learned and out.ids == [res.review_id] and out.predicted == ["unknown"]
        report = out.report
        assert report is not None and report.task.name == TODAY and report.examples == 1
        assert report.updated_classes == ["account_blocked"] and not report.new_classes
        assert report.snapshot is not None and report.snapshot.startswith("auto-")
        checked = {a["name"]: a for a in report.holdout_accuracy}  # the forgetting check
        assert sorted(checked) == ["banking", "travel"]
        assert all(a["before"] is not None and a["after"] >= a["before"] - 5 for a in checked.values())
        assert learner.inbox.corrections.items() == [] and UNLOCK not in learner.inbox.items().texts
        (stored,) = feedback_examples(learner, UNLOCK)
        assert (stored.label, stored.task, stored.source) == ("account_blocked", TODAY, "feedback")
        assert best(tools, UNLOCK) == ("account_blocked", True)  # classified right now
        assert best(tools, "how do i unlock my bank account")[0] == "account_blocked"
        with pytest.raises(InvalidInputError, match="no corrections are waiting for review"):
            corrections.accept(learner)


def test_with_learning_allowed_a_correction_is_learned_at_once(fresh_home: Path, tool_encoder) -> None:
    with IntentTools(fresh_home, allow_learning=True, encoder=tool_encoder) as tools:
        assert best(tools, UNLOCK)[0] == "freeze_account"
        res = tools.correct_intent(UNLOCK, "account_blocked")
        assert (res.status, res.predicted, res.review_id) == ("learned", "unknown", None)
        assert (res.task, res.task_id) == (TODAY, 3) and res.seconds is not None
        assert res.snapshot is not None and res.snapshot.startswith("auto-") and res.undo == "agent-il rollback"
        assert [(c.task, c.name) for c in res.forgetting_check] == [(1, "banking"), (2, "travel")]
        assert res.largest_drop is not None and 0 <= res.largest_drop <= 5
        assert "learned the correction to 'account_blocked'" in res.summary()
        assert tools.learner.inbox.corrections.items() == []
        assert best(tools, UNLOCK) == ("account_blocked", True)
        with pytest.raises(ToolError, match="label must be a known intent"):  # new intents: learn_intent
            tools.correct_intent(UNLOCK, "unlock_account")
        tools.learner.rollback()
        assert best(tools, UNLOCK)[0] == "freeze_account" and not feedback_examples(tools.learner, UNLOCK)


def cli(*args: str, home: Path, ok: bool = True):
    result = CliRunner().invoke(app, [*args, "--home", str(home)])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    else:
        assert result.exit_code == 1 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    return result


def cli_json(*args: str, home: Path) -> dict:
    return json.loads(cli(*args, "--json", home=home).stdout)


def top(home: Path, text: str) -> str:
    return cli_json("predict", text, "--no-inbox", home=home)["predictions"][0]["top_k"][0]["label"]


def test_cli_feedback_learn_corrections_and_the_review_queue(fresh_home: Path, tmp_path: Path) -> None:
    home = fresh_home
    assert top(home, UNLOCK) == "freeze_account"
    learned = cli_json("feedback", UNLOCK, "--label", "account_blocked", home=home)  # the operator's: learned at once
    assert learned["learned"] is True and learned["task"]["name"] == TODAY and learned["examples"] == 1
    assert learned["corrections"] == [{"label": "account_blocked", "predicted": "unknown"}]
    assert [a["name"] for a in learned["holdout_accuracy"]] == ["banking", "travel"]  # the forgetting check
    assert all(a["after"] >= a["before"] - 5 for a in learned["holdout_accuracy"])
    assert top(home, UNLOCK) == "account_blocked"
    stored = cli_json("examples", "list", "--intent", "account_blocked", "--search", "unlock", home=home)["examples"]
    assert [(e["source"], e["task"]) for e in stored if e["text"] == UNLOCK] == [("feedback", TODAY)]

    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"text,intent\n{FREEZE},freeze_account\n")
    text = cli("learn", str(fixes), "--corrections", home=home).stdout
    assert f"Learned task 4 {TODAY}" in text and "Held-out accuracy" in text and "before, the agent answered" in text
    assert top(home, FREEZE) == "freeze_account"

    queued = cli_json("feedback", RENAME, "--label", "pin_change", "--review", home=home)
    assert queued["learned"] is False and queued["ids"][0].startswith("fb-")
    listed = cli_json("inbox", "list", home=home)
    assert listed["corrections_total"] == 1 and listed["corrections"][0]["sender"] == "cli"
    assert {k: listed["corrections"][0][k] for k in ("text", "label", "predicted")} == {
        "text": RENAME,
        "label": "pin_change",
        "predicted": "unknown",
    }
    assert "waiting for review" in cli("inbox", "list", home=home).stdout
    assert cli_json("inbox", "reject", queued["ids"][0], home=home) == {"rejected": 1}
    assert cli_json("inbox", "list", home=home)["corrections_total"] == 0
    cli("feedback", RENAME, "--label", "pin_change", "--review", home=home)
    accepted = cli_json("inbox", "accept", "--all", home=home)
    assert accepted["learned"] is True and accepted["task"]["name"] == TODAY and accepted["ids"] == queued["ids"]
    assert top(home, RENAME) == "pin_change"
    assert [t["name"] for t in cli_json("tasks", "list", home=home)["tasks"]][2:] == [TODAY] * 3


def test_cli_refusals_change_nothing(fresh_home: Path, tmp_path: Path) -> None:
    home = fresh_home
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"text,intent\n{FREEZE},freeze_account\n{UNLOCK},no_such_intent\n")
    queued = cli_json("feedback", RENAME, "--label", "pin_change", "--review", home=home)["ids"][0]
    cli("predict", "tell me a joke about penguins", home=home)  # an unknown in the inbox
    unknown_id = cli_json("inbox", "list", home=home)["items"][0]["id"]
    before = cli_json("status", home=home)
    cases = [
        (["feedback", UNLOCK, "--label", "no_such_intent"], "label: 'no_such_intent' is not a known intent"),
        (["feedback", UNLOCK, "--label", "unknown"], "the answer kept for inputs that fit no intent"),
        (["feedback", " ", "--label", "pay_bill"], "texts[0] is empty or whitespace"),
        (["learn", str(fixes), "--corrections"], "labels[1]: 'no_such_intent' is not a known intent"),
        (["learn", str(fixes), "--corrections", "--task", "x"], "leave out --task and --holdout"),
        (["inbox", "accept"], "give the ids of corrections, or --all, one of them"),
        (["inbox", "accept", queued, "--all"], "give the ids of corrections, or --all, one of them"),
        (["inbox", "accept", "fb-0000"], "no correction 'fb-0000' waits for review"),
        (["inbox", "accept", unknown_id], "is an unknown input, not a correction"),
        (["inbox", "reject", queued, "fb-0000"], "no correction 'fb-0000' waits for review"),
    ]
    for args, message in cases:
        assert message in cli(*args, home=home, ok=False).stderr, args
    after = cli_json("status", home=home)
    assert (after["generation"], after["tasks"]) == (before["generation"], before["tasks"])
    listed = cli_json("inbox", "list", home=home)
    assert [c["id"] for c in listed["corrections"]] == [queued] and listed["total"] == 1
    assert cli_json("inbox", "clear", home=home) == {"deleted": 1}  # the unknowns; the correction stays
    assert cli_json("inbox", "list", home=home)["corrections_total"] == 1

    new = ["feedback", "open a joint account for us", "--label", "joint_account", "--new-intent", "--review"]
    brand_new = cli_json(*new, home=home)["ids"][0]
    refused = cli("inbox", "accept", brand_new, home=home, ok=False).stderr
    assert f"correction {brand_new}: 'joint_account' is not a known intent" in refused
    assert cli_json("inbox", "accept", brand_new, "--new-intent", home=home)["new_classes"] == ["joint_account"]


def test_the_queue_is_bounded_and_apart_from_the_unknowns(fresh_home: Path, tool_encoder) -> None:
    with IntentLearner.open(fresh_home, encoder=tool_encoder) as learner:
        queue, inbox = learner.inbox.corrections, learner.inbox
        queue.limit, inbox.limit = 4, 3
        generation = learner.state.generation
        texts = [f"please freeze account number {i}" for i in range(6)]
        for t in texts:
            out = corrections.correct(learner, [t], ["freeze_account"], review=True)
            assert not out.learned and out.ids[0].startswith("fb-")
        kept = [p.text for p in queue.items()]
        assert len(kept) <= 4 and kept == texts[-len(kept) :]  # the newest are kept
        rng = np.random.default_rng(0)
        x = rng.normal(size=(5, learner.state.dim)).astype(np.float32)
        inbox.add(x, [f"unrelated message {i}" for i in range(5)], ["pay_bill"] * 5, [0.0] * 5)
        assert len(inbox.items().ids) <= 3 and [p.text for p in queue.items()] == kept  # unknowns' bound only
        unknowns = len(inbox.items().ids)
        assert inbox.forget() == unknowns and inbox.items().ids == []  # inbox clear: the unknowns only
        assert [p.text for p in queue.items()] == kept and learner.state.generation == generation
        assert queue.reject() == len(kept) and queue.items() == []


@pytest.mark.parametrize(
    ("texts", "labels", "options", "message"),
    [
        ([], [], {}, "texts is empty"),
        ("can you freeze my account", ["freeze_account"], {}, "texts must be a list, got str"),
        ([FREEZE], ["freeze_account", "pin_change"], {}, "got 1 examples but 2 labels"),
        ([FREEZE], ["unknown"], {}, "the answer kept for inputs that fit no intent"),
        ([FREEZE], ["no_such_intent"], {}, "label: 'no_such_intent' is not a known intent"),
        ([FREEZE], ["freeze_account"], {"review": "yes"}, "review must be True or False"),
        ([FREEZE], ["freeze_account"], {"new_intent": 1}, "new_intent must be True or False"),
        ([FREEZE], ["freeze_account"], {"sender": "someone"}, "sender must be one of tool, cli, api"),
        (["x" * 1001], ["freeze_account"], {}, "texts[0] has 1,001 characters"),
    ],
)
def test_python_api_refuses_bad_arguments(
    learned_home: Path, tool_encoder, texts: object, labels: object, options: dict, message: str
) -> None:
    with IntentLearner.open(learned_home, encoder=tool_encoder) as learner:
        generation = learner.state.generation
        with pytest.raises(InvalidInputError, match=re.escape(message)):
            corrections.correct(learner, texts, labels, **{"review": True, **options})  # type: ignore[arg-type]
        for ids, refused in (([], "ids is empty"), (["fb-0"], "no correction 'fb-0' waits")):
            with pytest.raises(InvalidInputError, match=refused):
                corrections.accept(learner, ids)
        assert learner.state.generation == generation and learner.inbox.corrections.items() == []


def test_a_purge_erases_a_waiting_correction_of_the_same_text(fresh_home: Path, tool_encoder, quickstart) -> None:
    text = quickstart["banking"][0][0]  # a learned example, which someone says meant another intent
    with IntentLearner.open(fresh_home, encoder=tool_encoder) as learner:
        other = next(y for y in learner.labels if y != quickstart["banking"][1][0])
        corrections.correct(learner, [text], [other], review=True)
        corrections.correct(learner, [FREEZE], ["freeze_account"], review=True)
        report = learner.remove_examples(texts=[text], purge=True)
        assert report.purged is not None and report.purged["inbox"] == 1  # the inbox's collection holds the queue
        assert [p.text for p in learner.inbox.corrections.items()] == [FREEZE]
