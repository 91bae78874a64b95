"""Moving a workspace to another encoder: after ``migrate`` it answers as a fresh workspace that
learned the same learns with that model, as one transaction that ``rollback`` undoes, embedded
and on a Chroma server; a purge afterwards erases the text from both encoders' records; bad
input changes nothing. The other model is a tiny random sentence-transformers model (conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent_il import IntentLearner, InvalidInputError
from agent_il.cli import app
from agent_il.config import DEFAULT_MODEL
from agent_il.results import Prediction

HOLDOUT = 0.2


@pytest.fixture(scope="module")
def learns(clinc) -> list[tuple[list[str], list[str]]]:
    """Two CLINC150 learns of five intents each."""
    return [clinc.split("train", clinc.tasks[i][:5]) for i in range(2)]


@pytest.fixture(scope="module")
def queries(clinc, learns) -> list[str]:
    texts, _ = clinc.split("test", [y for _, labels in learns for y in dict.fromkeys(labels)])
    oos = [t for t, y in clinc.data["oos_test"][:40]]
    return texts + oos


def learn_all(learner: IntentLearner, learns) -> IntentLearner:
    for i, (texts, labels) in enumerate(learns):
        learner.learn(texts, labels, task=f"t{i}", holdout=HOLDOUT)
    return learner


def answers(learner: IntentLearner, queries: list[str]) -> list[Prediction]:
    return learner.predict(queries, k=len(learner.labels), evidence=0, inbox=False)


def assert_same(got: list[Prediction], want: list[Prediction], tol: float = 1e-4, score_tol: float = 1e-3) -> None:
    """The same labels (``unknown`` included) and rankings; confidences within ``tol``; the
    rejection score (a Mahalanobis distance, in the tens) within ``score_tol``."""
    for one, other in zip(got, want, strict=True):
        assert (one.label, one.known) == (other.label, other.known)
        assert one.top_k[0][0] == other.top_k[0][0]
        conf = dict(other.top_k)
        assert max(abs(c - conf[y]) for y, c in one.top_k) < tol
        assert abs(one.score - other.score) < score_tol


def test_a_migration_answers_as_learning_with_that_model_and_rolls_back(tmp_path, encoder, tiny_model, learns, queries):
    a = learn_all(IntentLearner.open(tmp_path / "a", encoder=encoder), learns)
    a.predict(["what is the airspeed of an unladen swallow", "sing me the song of my people"])  # the inbox
    inbox = len(a.inbox.items().ids)
    before, generation = answers(a, queries), a.state.generation

    report = a.migrate(tiny_model)
    assert report.model == {"from": DEFAULT_MODEL, "to": str(Path(tiny_model).resolve())}
    assert report.dim == {"from": 384, "to": 32}
    assert report.examples == len(a.state.live("examples")) and report.holdout_examples > 0
    assert report.inbox == inbox == len(a.inbox.items().ids)
    assert [h["task"] for h in report.holdout_accuracy] == [1, 2] and report.snapshot == f"auto-{generation:06d}"
    assert a.state.generation == generation + 1 and a.encoder.model_id == report.model["to"]

    b = learn_all(IntentLearner.open(tmp_path / "b", model=tiny_model), learns)
    assert_same(answers(a, queries), answers(b, queries))
    assert a.state.evaluation == b.state.evaluation  # the accuracy matrix, learn by learn
    assert sorted(e.text for e in a.examples()) == sorted(e.text for e in b.examples())
    migrated = answers(a, queries)
    a.close()

    again = IntentLearner.open(tmp_path / "a")  # the workspace's model now: the tiny one
    assert again.config.model == report.model["to"]
    assert_same(answers(again, queries), migrated, tol=1e-9, score_tol=1e-9)
    again.rollback()
    assert again.config.model == DEFAULT_MODEL and again.state.dim == 384
    assert_same(answers(again, queries), before, tol=1e-6, score_tol=1e-6)
    assert again.workspace.spaces() == {""}  # the migrated records went with the rollback
    assert len(again.inbox.items().ids) == inbox
    assert again.doctor().ok
    again.learn(["when is my electricity bill due"], [learns[0][1][0]])  # learns on with the old encoder


def test_restores_cross_encoders_both_ways(tmp_path, encoder, tiny_model, learns, queries):
    a = learn_all(IntentLearner.open(tmp_path / "a", encoder=encoder), learns[:1])
    a.snapshot("minilm")
    before = answers(a, queries)
    a.migrate(tiny_model)
    a.snapshot("tiny")
    migrated = answers(a, queries)
    a.restore("minilm")
    assert a.config.model == DEFAULT_MODEL
    assert_same(answers(a, queries), before, tol=1e-6, score_tol=1e-6)
    a.restore("tiny")
    assert a.config.model == str(Path(tiny_model).resolve())
    assert_same(answers(a, queries), migrated, tol=1e-6, score_tol=1e-6)
    a.delete_snapshot("tiny")
    assert len(a.workspace.spaces()) == 2  # "minilm" and the automatic snapshots still name the first
    diagnosis = a.doctor()
    assert diagnosis.ok, diagnosis.problems


def test_bad_migrations_change_nothing(tmp_path, encoder, tiny_model, learns):
    empty = IntentLearner.open(tmp_path / "empty", encoder=encoder)
    with pytest.raises(InvalidInputError, match="learned nothing"):
        empty.migrate(tiny_model)
    a = learn_all(IntentLearner.open(tmp_path / "a", encoder=encoder), learns[:1])
    state = a.workspace.read_state()
    with pytest.raises(InvalidInputError, match="already encodes"):
        a.migrate(DEFAULT_MODEL)
    with pytest.raises(InvalidInputError, match="unknown backend"):
        a.migrate(tiny_model, backend="gpu")
    with pytest.raises(InvalidInputError, match="model"):
        a.migrate("  ")
    with pytest.raises(Exception, match="could not load encoder model"):
        a.migrate(tmp_path / "no-such-model", backend="torch")
    a.learn_vectors(encoder.encode(["a vector without its text"]), [learns[0][1][0]])
    with pytest.raises(InvalidInputError, match="1 examples were learned as vectors"):
        a.migrate(tiny_model)
    assert a.workspace.read_state()["generation"] == state["generation"] + 1  # the learn_vectors only
    assert a.workspace.spaces() == {""} and a.config.model == DEFAULT_MODEL
    assert a.doctor().ok


def test_purge_after_a_migration_erases_both_encoders_copies(tmp_path, encoder, tiny_model, learns):
    a = learn_all(IntentLearner.open(tmp_path / "a", encoder=encoder), learns[:1])
    secret = learns[0][0][2]
    a.migrate(tiny_model)
    a.predict([secret])  # in the tiny model's embedding cache too
    report = a.remove_examples(texts=[secret], purge=True)
    assert report.purged is not None and report.purged["embedding cache"] == 2  # both models' caches
    assert report.purged["examples"] + report.purged["holdout"] >= 2  # a copy in each space
    a.close()
    needle = secret.encode("utf-8")
    assert [p for p in (tmp_path / "a").rglob("*") if p.is_file() and needle in p.read_bytes()] == []
    again = IntentLearner.open(tmp_path / "a")
    again.rollback()  # to the MiniLM state before the purge's edit: it too lost the text
    again.rollback()  # before the migration
    assert again.config.model == DEFAULT_MODEL and all(e.text != secret for e in again.examples())


def test_migration_on_a_chroma_server(chroma_url, server_name, encoder, tiny_model, learns, queries):
    where = {"chroma_url": chroma_url}
    small = [(texts[:60], labels[:60]) for texts, labels in learns]
    a = learn_all(IntentLearner.open(name=server_name, encoder=encoder, **where), small)
    reader = IntentLearner.open(name=server_name, encoder=encoder, **where)
    before = answers(reader, queries)
    a.migrate(tiny_model)
    b = learn_all(IntentLearner.open(name=f"{server_name}-b", model=tiny_model, **where), small)
    assert_same(answers(reader, queries), answers(b, queries))  # another process follows to the new encoder
    assert reader.config.model == str(Path(tiny_model).resolve())
    a.rollback()
    assert_same(answers(reader, queries), before, tol=1e-6, score_tol=1e-6)
    assert a.workspace.spaces() == {""}


def test_migrate_on_the_command_line(tmp_path, tiny_model, learns):
    home = tmp_path / "kb"
    assert CliRunner().invoke(app, ["init", "--home", str(home)]).exit_code == 0
    for i, (texts, labels) in enumerate(learns[:1]):
        path = tmp_path / f"t{i}.jsonl"
        path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(texts, labels)))
        assert CliRunner().invoke(app, ["learn", str(path), "--home", str(home), "--holdout", "0.2"]).exit_code == 0
    result = CliRunner().invoke(app, ["migrate", "--model", str(tiny_model), "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dim"] == {"from": 384, "to": 32} and report["snapshot"] == "auto-000001"
    status = json.loads(CliRunner().invoke(app, ["status", "--home", str(home), "--json"]).stdout)
    assert status["model"] == report["model"]["to"] and status["dim"] == 32
    bad = CliRunner().invoke(app, ["migrate", "--model", str(tiny_model), "--home", str(home)])
    assert bad.exit_code == 1 and "already encodes" in bad.output
    assert CliRunner().invoke(app, ["rollback", "--home", str(home)]).exit_code == 0
    status = json.loads(CliRunner().invoke(app, ["status", "--home", str(home), "--json"]).stdout)
    assert status["model"] == DEFAULT_MODEL and status["dim"] == 384
    assert np.isfinite(status["size_bytes"])
