"""Held-out slices, the accuracy matrix, snapshots and rollback in the core API."""

from __future__ import annotations

import json

import pytest

from agent_il import IntentLearner, InvalidInputError, WorkspaceError
from tests.helpers import records_held, tree_digest


def task(clinc, i: int, per_class: int = 40) -> tuple[list[str], list[str]]:
    texts, labels = clinc.split("train", clinc.tasks[i][:5])
    keep = [j for j, y in enumerate(labels) if labels[: j + 1].count(y) <= per_class]
    return [texts[j] for j in keep], [labels[j] for j in keep]


@pytest.fixture
def two_tasks(clinc, encoder, workspace_dir) -> IntentLearner:
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    learner.learn(*task(clinc, 0), task="one", holdout=0.25)
    learner.learn(*task(clinc, 1), task="two", holdout=0.25)
    return learner


def probe(clinc) -> list[str]:
    return clinc.split("test", clinc.tasks[0][:5] + clinc.tasks[1][:5])[0][::9]


def test_holdout_slices_and_accuracy_matrix(two_tasks, clinc):
    learner = two_tasks
    assert learner.status()["holdout_examples"] == 2 * 5 * 10
    m = learner.accuracy_matrix()
    assert m.tasks == [1, 2] and len(m.rows) == 2
    grid = m.grid()
    assert grid[0][1] is None and all(v is not None for v in grid[1])
    assert m.final_accuracy() == pytest.approx((grid[1][0] + grid[1][1]) / 2)
    assert m.forgetting() == pytest.approx(grid[0][0] - grid[1][0])
    assert m.backward_transfer() == pytest.approx(grid[1][0] - grid[0][0])
    report = learner.learn(*task(clinc, 2), task="three", holdout=0.25)
    by_task = {a["task"]: a for a in report.holdout_accuracy}
    assert by_task[1]["before"] == pytest.approx(grid[1][0]) and by_task[3]["before"] is None
    assert report.examples == 150 and report.holdout_examples == 50
    assert learner.accuracy_matrix().rows[-1][1] == {t: a["after"] for t, a in by_task.items()}


def test_holdout_examples_are_not_learned(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, encoder=encoder, memory_per_class=100)
    learner.learn(*task(clinc, 0), holdout=0.5)
    held = learner.stores["holdout"].load(learner.state.holdout["1"])
    memory = learner.memory.load([i for ids in learner.state.exemplars.values() for i in ids])
    assert set(held.texts).isdisjoint(memory.texts)
    assert learner.tasks[0].examples == 200 and len(held.ids) == 100


def test_restore_brings_back_head_memory_and_tasks(two_tasks, clinc):
    learner = two_tasks
    texts = probe(clinc)
    before = learner.predict(texts, k=3, evidence=3)
    digest = {k: v for k, v in tree_digest(learner.path).items() if k == "state.json"}
    ids = {s: st.all_ids() for s, st in learner.stores.items()}
    learner.snapshot("two-tasks")
    learner.learn(*task(clinc, 2), task="three", holdout=0.25)
    assert len(learner.labels) == 15
    info = learner.restore("two-tasks")
    assert info.classes == 10 and info.tasks == 2
    assert learner.predict(texts, k=3, evidence=3) == before
    # The stores hold the restored records and, no more, those the snapshot of the present names.
    # (The exemplars are examples: their own collection holds none.)
    present = learner.snapshots.named()
    expected = {s: ids[s] | present[s] for s in ids}
    assert present["exemplars"] <= present["examples"] and ids["exemplars"] == set()
    assert {s: st.all_ids() for s, st in learner.stores.items()} == {**expected, "exemplars": set()}
    assert ids["examples"] < present["examples"]  # the third learn's examples, kept by that snapshot
    learner.delete_snapshot(info.name)
    learner.delete_snapshot(learner.snapshots.list()[-1].name)  # the present before the restore
    assert all(not st.all_ids() - ids[s] - learner.snapshots.named()[s] for s, st in learner.stores.items())
    assert [t.name for t in learner.tasks] == ["one", "two"]
    assert json.loads((learner.path / "state.json").read_text())["labels"] == learner.labels
    assert digest  # state.json exists; its generation moved on, its content is the snapshot's
    again = IntentLearner.open(learner.path)
    assert again.predict(texts, k=3, evidence=3) == before


def test_rollback_undoes_the_last_learn(two_tasks, clinc):
    learner = two_tasks
    texts = probe(clinc)
    before = learner.predict(texts, k=3, evidence=3)
    learner.learn(*task(clinc, 2), task="three")
    assert learner.predict(texts, k=3, evidence=3) != before
    restored = learner.rollback()
    assert restored.auto and restored.tasks == 2
    assert learner.predict(texts, k=3, evidence=3) == before
    records_held(learner)
    learner.rollback()  # one more step back: before task two
    assert [t.name for t in learner.tasks] == ["one"]
    learner.rollback()  # and back to the empty workspace
    assert learner.labels == [] and records_held(learner) == {"exemplars": 0, "holdout": 0, "examples": 0}
    with pytest.raises(InvalidInputError, match="nothing to roll back"):
        learner.rollback()


def test_automatic_snapshots_are_bounded(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, encoder=encoder, auto_snapshots=2)
    for i in range(4):
        learner.learn(*task(clinc, i, per_class=5))
    assert [s.name for s in learner.snapshots.list()] == ["auto-000002", "auto-000003"]


def test_a_racing_writers_automatic_snapshot_is_shared_not_an_error(two_tasks):
    """Two writers from the same state both save its automatic snapshot: the second finds the
    first's (the name check and the exclusive write are one step, so no window is left)."""
    history, state = two_tasks.snapshots, two_tasks.state
    assert history.save("auto-000002", "t", state.to_json()) is not None
    assert history.save("auto-000002", "t", state.to_json()) is None
    info, created = history.auto(state)
    assert (info.name, created) == ("auto-000002", False)
    with pytest.raises(InvalidInputError, match="already exists"):
        history.create(state, "v1") and history.create(state, "v1")


def test_snapshot_names_are_validated(two_tasks):
    for bad in ["../escape", "a/b", "", ".hidden", "x" * 65, "auto-000001"]:
        with pytest.raises(InvalidInputError):
            two_tasks.snapshot(bad)
    two_tasks.snapshot("ok")
    with pytest.raises(InvalidInputError, match="already exists"):
        two_tasks.snapshot("ok")
    with pytest.raises(InvalidInputError, match="no snapshot"):
        two_tasks.restore("absent")
    two_tasks.delete_snapshot("ok")
    assert "ok" not in [s.name for s in two_tasks.snapshots.list()]


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove"])
@pytest.mark.parametrize("part", ["manifest", "weights"])
def test_damaged_snapshot_is_refused_and_changes_nothing(two_tasks, clinc, damage, part):
    learner = two_tasks
    learner.snapshot("saved")
    weights = learner.path / learner.state.weights
    learner.learn(*task(clinc, 2), task="three")  # the snapshot's weights are no longer the live ones
    target = learner.path / "snapshots" / "saved.json" if part == "manifest" else weights
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:50])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    state = (learner.path / "state.json").read_bytes()
    texts = probe(clinc)
    before = learner.predict(texts)
    with pytest.raises((WorkspaceError, InvalidInputError), match=r"damaged|no snapshot"):
        learner.restore("saved")
    assert (learner.path / "state.json").read_bytes() == state
    assert learner.predict(texts) == before


def test_evaluate_on_a_labelled_set(two_tasks, clinc):
    texts, labels = clinc.split("test", clinc.tasks[0][:5] + clinc.tasks[1][:5] + clinc.tasks[2][:1])
    result = two_tasks.evaluate(texts, labels)
    assert result.examples == len(texts)
    assert set(result.per_task) == {"1", "2"} and result.per_task["1"]["name"] == "one"
    assert result.unknown_labels == [clinc.tasks[2][0]]
    assert result.per_class[clinc.tasks[2][0]]["accuracy"] == 0.0
    assert 80.0 < result.accuracy < 100.0
