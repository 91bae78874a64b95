"""Persistence and failure safety: reopen gives identical predictions; a learn that fails at any
point leaves the workspace byte-for-byte as it was and the learner predicting as before."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest

from agent_il import IntentLearner, InvalidInputError, ModelMismatchError, WorkspaceError
from agent_il.memory.records import Records
from agent_il.storage import atomic
from tests.helpers import records_held, tree_digest


def small_task(clinc, i: int, per_class: int = 40) -> tuple[list[str], list[str]]:
    texts, labels = clinc.split("train", clinc.tasks[i][:5])
    keep = [j for j, label in enumerate(labels) if labels[: j + 1].count(label) <= per_class]
    return [texts[j] for j in keep], [labels[j] for j in keep]


def probe(clinc) -> list[str]:
    return clinc.split("test", clinc.tasks[0][:5] + clinc.tasks[1][:5])[0][::7]


@pytest.fixture(params=["ewc-replay", "ridge"])
def learned(request, clinc, encoder, workspace_dir) -> IntentLearner:
    learner = IntentLearner.open(workspace_dir, strategy=request.param, encoder=encoder)
    learner.learn(*small_task(clinc, 0), task="one")
    learner.learn(*small_task(clinc, 1), task="two")
    return learner


def snapshot(learner: IntentLearner, texts: list[str]) -> tuple[dict, list]:
    # inbox=False: a text rejected as unknown would otherwise be kept in the inbox (a Chroma write)
    return tree_digest(learner.path), learner.predict(texts, k=3, evidence=2, inbox=False)


def test_reopen_gives_identical_predictions(learned, clinc, encoder):
    texts = probe(clinc)
    before = learned.predict(texts, k=3, evidence=2)
    learned.close()
    again = IntentLearner.open(learned.path, encoder=encoder)
    assert again.predict(texts, k=3, evidence=2) == before
    assert [t.name for t in again.tasks] == ["one", "two"]
    assert again.exemplar_counts() == learned.exemplar_counts()


def test_reopen_in_a_new_process_state(learned, clinc):
    """A fresh Encoder (not the shared one) reads the workspace's embedding cache: no re-encoding."""
    from agent_il import Encoder

    texts = small_task(clinc, 0)[0]
    fresh = Encoder()
    again = IntentLearner.open(learned.path, encoder=fresh)
    again.learn(texts, small_task(clinc, 0)[1], task="again")
    assert fresh.encoded_count == 0


BAD_INPUTS = [
    ([], [], InvalidInputError),
    (["book a flight"], [], InvalidInputError),
    (["book a flight", "  "], ["travel", "travel"], InvalidInputError),
    (["book a flight"], [7], InvalidInputError),
    (["book a flight"], [""], InvalidInputError),
    ("book a flight", ["travel"], InvalidInputError),
    ([None], ["travel"], InvalidInputError),
]


@pytest.mark.parametrize(("texts", "labels", "error"), BAD_INPUTS)
def test_bad_input_changes_nothing(learned, clinc, texts, labels, error):
    probe_texts = probe(clinc)
    before = snapshot(learned, probe_texts)
    with pytest.raises(error):
        learned.learn(texts, labels)
    assert snapshot(learned, probe_texts) == before


def test_vector_dimension_mismatch_changes_nothing(learned, clinc):
    before = snapshot(learned, probe(clinc))
    with pytest.raises(ModelMismatchError):
        learned.learn_vectors(np.ones((2, 17)), ["a", "b"])
    with pytest.raises(InvalidInputError):
        learned.learn_vectors(np.full((1, 384), np.nan), ["a"])
    assert snapshot(learned, probe(clinc)) == before


def test_exception_after_head_update_changes_nothing(learned, clinc, monkeypatch):
    """The head is trained (on a copy), then the learn dies before committing."""
    probe_texts = probe(clinc)
    before = snapshot(learned, probe_texts)
    fit = type(learned.strategy).fit

    def fit_then_fail(self, *args, **kwargs):
        fit(self, *args, **kwargs)
        raise RuntimeError("injected after the head update")

    monkeypatch.setattr(type(learned.strategy), "fit", fit_then_fail)
    with pytest.raises(RuntimeError, match="injected"):
        learned.learn(*small_task(clinc, 2), task="three")
    monkeypatch.undo()
    assert snapshot(learned, probe_texts) == before
    assert len(learned.tasks) == 2
    learned.learn(*small_task(clinc, 2), task="three")  # and it still learns afterwards
    assert len(learned.labels) == 15


def test_exception_during_commit_rolls_back_memory(learned, clinc, encoder, monkeypatch):
    """New exemplars are already in Chroma and the new weights file is written when the state
    rename fails: the state stays, the new exemplars are removed, reopen sees the old workspace."""
    probe_texts = probe(clinc)
    before_preds = learned.predict(probe_texts, k=3, evidence=2)
    before_state = (learned.path / "state.json").read_bytes()
    before_ids = learned.memory.all_ids()
    write_bytes = atomic.write_bytes

    def fail_on_state(path, data, **kwargs):
        if path.name == "state.json":
            raise OSError("disk full (injected)")
        write_bytes(path, data, **kwargs)

    monkeypatch.setattr(atomic, "write_bytes", fail_on_state)
    with pytest.raises(OSError, match="injected"):
        learned.learn(*small_task(clinc, 2), task="three")
    monkeypatch.undo()
    assert (learned.path / "state.json").read_bytes() == before_state
    assert learned.memory.all_ids() == before_ids
    assert learned.predict(probe_texts, k=3, evidence=2) == before_preds
    reopened = IntentLearner.open(learned.path, encoder=encoder)
    assert reopened.predict(probe_texts, k=3, evidence=2) == before_preds


def test_orphans_of_a_killed_learn_are_pruned(learned, clinc, encoder):
    """Records a crashed learn added but never committed do not survive the next learn (of the
    next process: the crashed one is gone)."""
    x = np.ones((1, 384), dtype=np.float32) / np.sqrt(384)
    meta = {"label": "ghost", "task": "x", "task_id": 9, "time": 0.0}
    learned.memory.add(Records(["orphan"], x, ["left by a crash"], [meta]))
    path = learned.path
    learned.close()
    again = IntentLearner.open(path, encoder=encoder)
    again.learn(*small_task(clinc, 2), task="three")
    assert "orphan" not in again.memory.all_ids()
    records_held(again)
    again.close()


def test_model_mismatch_is_refused(learned, tmp_path):
    other = tmp_path / "other-model"
    other.mkdir()
    with pytest.raises(ModelMismatchError):
        IntentLearner.open(learned.path, model=str(other))


def test_settings_of_an_existing_workspace_cannot_change(learned):
    other = "ridge" if learned.config.strategy != "ridge" else "ewc-replay"
    with pytest.raises(InvalidInputError, match="strategy"):
        IntentLearner.open(learned.path, strategy=other)


def test_open_refuses_what_is_not_a_workspace(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="not an agent-il workspace"):
        IntentLearner.open(tmp_path)
    with pytest.raises(WorkspaceError, match="no agent-il workspace"):
        IntentLearner.open(tmp_path / "absent", create=False)


def test_damaged_state_and_weights_give_clear_errors(learned):
    state = json.loads((learned.path / "state.json").read_text())
    weights = learned.path / state["weights"]
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(WorkspaceError, match=r"weights .* do not match their checksum"):
        IntentLearner.open(learned.path)
    (learned.path / "state.json").write_text("{not json")
    with pytest.raises(WorkspaceError, match=r"state\.json is damaged"):
        IntentLearner.open(learned.path)


def test_unknown_strategy_and_bad_budget(workspace_dir):
    with pytest.raises(InvalidInputError, match="unknown strategy"):
        IntentLearner.open(workspace_dir, strategy="magic")
    with pytest.raises(InvalidInputError):
        IntentLearner.open(workspace_dir, memory_per_class=0)
    assert not (workspace_dir / "state.json").exists()


def test_predict_before_learning_is_a_clear_error(workspace_dir, encoder):
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    with pytest.raises(WorkspaceError, match="learned nothing"):
        learner.predict(["hello"])


def test_workspace_files_are_private(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    learner.learn(*small_task(clinc, 0, per_class=5))
    learner.snapshot("saved")
    assert stat.S_IMODE(workspace_dir.stat().st_mode) == 0o700
    written = [workspace_dir / n for n in ("state.json", ".lock", ".owner")]
    written += [f for d in ("weights", "snapshots", "cache") for f in (workspace_dir / d).iterdir()]
    assert len(written) >= 8
    for f in written:
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    learner.close()


def test_a_workspace_from_before_examples_were_kept_still_stores_its_own_exemplars(clinc, encoder, workspace_dir):
    """Schema 1 kept only the exemplars, in their own collection: such a workspace learns on with
    its exemplars stored apart (they are not examples there), and reopens to the same answers."""
    from agent_il.storage.blobs import sealed, unsealed

    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    learner.learn(*small_task(clinc, 0), task="one")
    first = learner.state.live("exemplars")
    learner.memory.add(learner.memory.load(first, from_chroma=True))  # where schema 1 kept them
    learner.close()
    path = workspace_dir / "state.json"
    state = unsealed(path.read_text(encoding="utf-8"), str(path))
    atomic.write_bytes(path, sealed({**state, "schema": 1, "examples": None}).encode())

    old = IntentLearner.open(workspace_dir, encoder=encoder)
    assert old.state.examples is None
    old.learn(*small_task(clinc, 1), task="two")
    live = old.state.live("exemplars")
    assert len(live) == 200 and set(first) < set(live)
    assert old.memory.all_ids() == set(live) and old.stores["examples"].count() == 0
    texts = probe(clinc)
    before = old.predict(texts, k=3, evidence=2, inbox=False)
    assert (
        np.mean(
            [p.label == y for p, y in zip(before, clinc.split("test", clinc.tasks[0][:5] + clinc.tasks[1][:5])[1][::7])]
        )
        > 0.8
    )
    old.close()
    again = IntentLearner.open(workspace_dir, encoder=encoder)
    assert again.predict(texts, k=3, evidence=2, inbox=False) == before
    assert again.doctor().ok
    again.close()
