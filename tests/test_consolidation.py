"""Consolidation: the encoder fine-tuned on the stored examples (never a held-out one), kept in
the workspace as a blob and migrated to, so that the workspace answers as a fresh one of that
encoder; rollback returns; a server workspace shares it; the budget shortens the run; bad input
changes nothing; the benchmark runs it inside the protocol. The base encoder is conftest's tiny
random model (one layer, tuned whole); the split of the real model is checked on its own."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_migration import answers, assert_same, learn_all
from typer.testing import CliRunner

from agent_il import IntentLearner, InvalidInputError
from agent_il.cli import app
from agent_il.config import DEFAULT_MODEL
from agent_il.encoding import adapted, tuning
from agent_il.storage.base import new_space


def first(rows: tuple[list[str], list[str]], n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` examples of each intent."""
    counts: dict[str, int] = {}
    keep = [r for r, y in enumerate(rows[1]) if counts.setdefault(y, 0) < n and not counts.update({y: counts[y] + 1})]
    return [rows[0][r] for r in keep], [rows[1][r] for r in keep]


@pytest.fixture(scope="module")
def learns(clinc) -> list[tuple[list[str], list[str]]]:
    """Two CLINC150 learns of four intents, 40 examples each."""
    return [first(clinc.split("train", clinc.tasks[i][:4]), 40) for i in range(2)]


@pytest.fixture(scope="module")
def queries(clinc, learns) -> list[str]:
    texts, _ = clinc.split("test", [y for _, labels in learns for y in dict.fromkeys(labels)])
    return texts + [t for t, _ in clinc.data["oos_test"][:20]]


@pytest.fixture
def trained_on(monkeypatch) -> list[list[str]]:
    """The texts each fine-tune was given (the real fine-tune runs)."""
    seen: list[list[str]] = []
    real = tuning.fine_tune

    def spy(model, texts, labels, *args, **kwargs):
        seen.append(list(texts))
        return real(model, texts, labels, *args, **kwargs)

    monkeypatch.setattr(tuning, "fine_tune", spy)
    return seen


def test_consolidation_answers_as_a_workspace_of_the_adapted_encoder(tmp_path, tiny_model, learns, queries, trained_on):
    a = learn_all(IntentLearner.open(tmp_path / "a", model=tiny_model), learns)
    before, generation = answers(a, queries), a.state.generation
    held = {e.text for e in a.examples() if e.held_out}
    learned = {e.text for e in a.examples() if not e.held_out}

    report = a.consolidate(max_minutes=5)
    base = str(Path(tiny_model).resolve())
    assert report.base == base and a.config.model == report.encoder and adapted.is_adapted(report.encoder)
    assert set(trained_on[0]) == learned and not held & set(trained_on[0])  # held-out rows never trained on
    assert report.tuning["examples"] == len(learned) and report.tuning["classes"] == 8
    assert report.tuning["steps"] == report.tuning["planned_steps"] and report.tuning["lower_layers_cached"]
    assert report.migration.snapshot == f"auto-{generation:06d}" and a.state.generation == generation + 1
    assert a.workspace.blobs.keys("encoders/") == [adapted.blob_key(report.encoder)]
    consolidated = answers(a, queries)
    assert [p.top_k for p in consolidated] != [p.top_k for p in before]  # the encoder did change

    b = learn_all(IntentLearner.open(tmp_path / "b", model=adapted.folder(report.encoder)), learns)
    fresh = answers(b, queries)
    for one, other in zip(consolidated, fresh, strict=True):  # the head learning with that encoder makes
        assert [y for y, _ in one.top_k] == [y for y, _ in other.top_k]
        assert max(abs(c - dict(other.top_k)[y]) for y, c in one.top_k) < 1e-4
    assert a.state.evaluation == b.state.evaluation
    # but not its threshold: the encoder was tuned on every learned example, so the other intents'
    # exemplars no longer calibrate (they score like familiar rows); a fresh workspace cannot know
    assert a.state.tuned_through == 2 and b.state.tuned_through is None
    assert "exemplars of other intents" in b.calibrator.setting()["source"]
    assert "exemplars of other intents" not in a.calibrator.setting()["source"]

    a.learn(["book me a seat on the rocket to mars", "a ticket to the moon please"] * 3, ["space_trip"] * 6)
    assert a.config.model == report.encoder  # later learns use the adapted encoder
    a.close()
    again = IntentLearner.open(tmp_path / "a")
    assert again.config.model == report.encoder
    assert again.predict(["a ticket to the moon please"])[0].label == "space_trip"
    again.rollback()
    assert_same(answers(again, queries), consolidated, tol=1e-9, score_tol=1e-9)
    again.rollback()  # before the consolidation: the base encoder, its head, and no adapted blob
    assert again.config.model == base
    assert_same(answers(again, queries), before, tol=1e-6, score_tol=1e-6)
    assert again.workspace.spaces() == {""} and again.workspace.blobs.keys("encoders/") == []
    assert not adapted.folder(report.encoder).exists()  # nor its layout on this machine
    assert again.doctor().ok


def test_after_consolidation_rows_the_encoder_learned_do_not_calibrate(tmp_path, tiny_model, learns):
    """Rows the encoder was fine-tuned on score like familiar ones even left out of the head (on
    CLINC150 the default threshold then kept 91% of new queries for 95%): with enough held-out
    rows, those calibrate alone; a later learn's own rows calibrate again, being new to it."""
    a = IntentLearner.open(tmp_path / "a", model=tiny_model)
    for i, (texts, labels) in enumerate(learns):
        a.learn(texts, labels, task=f"t{i}", holdout=0.5)
    assert "learned examples" in a.calibrator.setting()["source"]
    a.consolidate(max_minutes=5)
    source = a.calibrator.setting()["source"]
    assert source == "160 held-out examples (the encoder was tuned on the learned ones)"
    a.learn(["book me a seat on the rocket to mars", "a ticket to the moon please"] * 3, ["space_trip"] * 6)
    source = a.calibrator.setting()["source"]
    assert source.startswith("6 learned examples, left out in runs + 160 held-out") and "other intents" not in source
    a.close()
    again = IntentLearner.open(tmp_path / "a")
    assert again.state.tuned_through == 2
    again.rollback()
    again.rollback()  # before the consolidation
    assert again.state.tuned_through is None and "learned examples" in again.calibrator.setting()["source"]
    again.close()


def test_consolidating_again_starts_from_the_base_model(tmp_path, tiny_model, learns):
    a = learn_all(IntentLearner.open(tmp_path / "a", model=tiny_model), learns[:1])
    first = a.consolidate()
    second = a.consolidate()
    assert first.base == second.base == str(Path(tiny_model).resolve())
    assert second.migration.model == {"from": first.encoder, "to": second.encoder}
    assert len(a.workspace.blobs.keys("encoders/")) == 2  # the first is named by a snapshot still
    a.delete_snapshot(second.migration.snapshot)
    a.delete_snapshot(first.migration.snapshot)
    assert a.workspace.blobs.keys("encoders/") == [adapted.blob_key(second.encoder)]


def test_a_small_budget_shortens_the_schedule(tmp_path, tiny_model, learns):
    a = learn_all(IntentLearner.open(tmp_path / "a", model=tiny_model), learns[:1])
    report = a.consolidate(max_minutes=0.01, plan=tuning.Plan(epochs=10_000))
    t = report.tuning
    assert 8 <= t["steps"] < t["planned_steps"]  # ends early, on a schedule fitted to what is left
    assert a.config.model == report.encoder


def test_the_split_reproduces_the_bundled_model(clinc):
    from agent_il.encoding.sbert import load_sentence_transformer

    model = load_sentence_transformer(DEFAULT_MODEL, "cpu")
    body = tuning._Body(model, layers=2)
    texts = [t for t, _ in clinc.data["train"][:12]]
    assert body.cache(texts)  # the lower layers' output, run through the top two, is the model's
    assert body.split == 4 and all(k.startswith(("encoder.layer.4.", "encoder.layer.5.")) for k in body.named_tuned())


def test_bad_consolidations_change_nothing(tmp_path, tiny_model, learns):
    empty = IntentLearner.open(tmp_path / "empty", model=tiny_model)
    with pytest.raises(InvalidInputError, match="two intents"):
        empty.consolidate()
    a = IntentLearner.open(tmp_path / "a", model=tiny_model)
    texts, labels = learns[0]
    one = [r for r, y in enumerate(labels) if y == labels[0]]
    a.learn([texts[r] for r in one], [labels[r] for r in one])
    with pytest.raises(InvalidInputError, match="two intents"):
        a.consolidate()
    learn_all(a, learns[:1])
    state = a.workspace.read_state()
    for bad in (0, -1, math.nan, math.inf, "x", None):
        with pytest.raises(InvalidInputError, match="max_minutes"):
            a.consolidate(max_minutes=bad)  # type: ignore[arg-type]
    assert a.workspace.read_state() == state
    a.learn_vectors(a.encoder.encode(["a vector without its text"]), [labels[0]])
    state = a.workspace.read_state()
    with pytest.raises(InvalidInputError, match="without their text"):
        a.consolidate()
    assert a.workspace.read_state() == state
    assert a.workspace.blobs.keys("encoders/") == [] and a.workspace.spaces() == {""}


def test_the_doctor_sweeps_an_encoder_no_state_names(tmp_path, tiny_model, learns):
    a = learn_all(IntentLearner.open(tmp_path / "a", model=tiny_model), learns[:1])
    key = f"encoders/{new_space()}/0123.safetensors"  # a consolidation that died before its commit
    a.workspace.blobs.put(key, b"weights")
    assert a.doctor(orphan_age=3600).ok and key in a.workspace.blobs.keys("encoders/")  # maybe still running
    found = a.doctor(orphan_age=0)
    assert found.ok and a.workspace.blobs.keys("encoders/") == []


def test_a_server_workspace_shares_its_adapted_encoder(
    chroma_url, server_name, tiny_model, learns, queries, tmp_path, monkeypatch
):
    where = {"chroma_url": chroma_url, "name": server_name}
    small = [(texts[:60], labels[:60]) for texts, labels in learns]
    a = learn_all(IntentLearner.open(model=tiny_model, **where), small)
    report = a.consolidate()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "another-machine"))  # nothing laid out here yet
    reader = IntentLearner.open(**where)
    assert reader.config.model == report.encoder and adapted.folder(report.encoder).is_relative_to(tmp_path)
    assert_same(answers(reader, queries), answers(a, queries), tol=1e-6, score_tol=1e-6)
    a.rollback()
    reader.refresh()
    assert reader.config.model == str(Path(tiny_model).resolve()) and a.workspace.blobs.keys("encoders/") == []


def test_consolidate_on_the_command_line(tmp_path, tiny_model, learns):
    home = tmp_path / "kb"
    assert CliRunner().invoke(app, ["init", "--home", str(home), "--model", str(tiny_model)]).exit_code == 0
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(*learns[0])))
    assert CliRunner().invoke(app, ["learn", str(path), "--home", str(home), "--holdout", "0.2"]).exit_code == 0
    for bad in ("0", "-2", "nan", "ten"):
        result = CliRunner().invoke(app, ["consolidate", "--max-minutes", bad, "--home", str(home)])
        assert result.exit_code == 1 and "--max-minutes" in result.output
    result = CliRunner().invoke(app, ["consolidate", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["migration"]["model"]["to"] == report["encoder"] and report["tuning"]["examples"] > 0
    status = json.loads(CliRunner().invoke(app, ["status", "--home", str(home), "--json"]).stdout)
    assert status["model"] == report["encoder"]
    text = CliRunner().invoke(app, ["rollback", "--home", str(home)])
    assert text.exit_code == 0
    status = json.loads(CliRunner().invoke(app, ["status", "--home", str(home), "--json"]).stdout)
    assert status["model"] == str(Path(tiny_model).resolve())


def test_bench_consolidates_every_k_tasks(tmp_path, clinc, tiny_model):
    intents = [y for task in clinc.tasks[:2] for y in task[:6]]
    data = {name: [[t, y] for t, y in zip(*first(clinc.split(name, intents), 20))] for name in ("train", "test")}
    path = tmp_path / "small.json"
    path.write_text(json.dumps(data))
    args = ["bench", str(path), "--model", str(tiny_model), "--tasks", "3", "--seeds", "0", "--strategies", "ridge"]
    result = CliRunner().invoke(app, [*args, "--consolidate-every", "2", "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    ridge = out["strategies"]["ridge"]
    assert out["protocol"]["consolidate_every"] == 2 and ridge["consolidations"]["mean"] == 2  # after 2, and the last
    assert len(ridge["accuracy_per_step"]) == 3 and ridge["consolidation_seconds_total"]["mean"] > 0
    for bad in ("0", "x"):
        result = CliRunner().invoke(app, [*args, "--consolidate-every", bad, "--out", str(tmp_path / "bad")])
        assert result.exit_code == 1 and "--consolidate-every" in result.output


def test_a_purge_and_the_doctor_see_the_adapted_encoder(tmp_path, tiny_model, learns):
    a = learn_all(IntentLearner.open(tmp_path / "a", model=tiny_model), learns[:1])
    report = a.consolidate()
    secret = next(e.text for e in a.examples() if not e.held_out)
    removed = a.remove_examples(texts=[secret], purge=True)
    assert removed.purged is not None and removed.purged["adapted encoders that learned from them"] == 1
    assert a.doctor().ok
    a.workspace.blobs.put(adapted.blob_key(report.encoder), b"not the weights")
    found = a.doctor()
    assert not found.ok and any(p.startswith("encoder:") and "checksum" in p for p in found.problems)
