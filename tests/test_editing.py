"""The knowledge base as data: edits are exact for the ridge head (the head after an edit is the
head of a workspace that learned the same learns without, or with the new labels of, those
examples), they are transactions like a learn, and a purge leaves no byte of the text behind."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from agent_il import IntentLearner, InvalidInputError

TASKS = 3


@pytest.fixture(scope="module")
def data(clinc, encoder):
    """Three CLINC150 learns of 10 intents (embedded once), and the test queries."""
    learns = []
    for i in range(TASKS):
        texts, labels = clinc.split("train", clinc.tasks[i])
        learns.append((texts, labels, encoder.encode(texts)))
    classes = [c for i in range(TASKS) for c in clinc.tasks[i]]
    test_texts, test_labels = clinc.split("test", classes)
    return learns, test_texts, test_labels, encoder.encode(test_texts)


def learn_all(path: Path, encoder, learns, keep=lambda text, label: True, rename=None, holdout=0.0):
    learner = IntentLearner.open(path, encoder=encoder)
    rename = rename or {}
    for i, (texts, labels, x) in enumerate(learns):
        rows = [r for r, (t, y) in enumerate(zip(texts, labels)) if keep(t, y)]
        learner.learn_vectors(
            x[rows],
            [rename.get((texts[r], labels[r]), labels[r]) for r in rows],
            task=f"t{i}",
            texts=[texts[r] for r in rows],
            holdout=holdout,
        )
    return learner


def assert_same_answers(a: IntentLearner, b: IntentLearner, x: np.ndarray) -> None:
    assert sorted(a.labels) == sorted(b.labels)
    pa = a.predict_vectors(x, k=len(a.labels), evidence=0, inbox=False)
    pb = b.predict_vectors(x, k=len(b.labels), evidence=0, inbox=False)
    for one, other in zip(pa, pb):
        assert one.top_k[0][0] == other.top_k[0][0]
        scores = dict(other.top_k)
        assert max(abs(c - scores[y]) for y, c in one.top_k) < 1e-4


def test_delete_intent_is_exact(tmp_path, encoder, data):
    learns, _test_texts, test_labels, test_x = data
    gone = learns[1][1][0]  # an intent of the second learn
    a = learn_all(tmp_path / "a", encoder, learns, holdout=0.2)
    b = learn_all(tmp_path / "b", encoder, learns, keep=lambda t, y: y != gone, holdout=0.2)
    report = a.delete_intent(gone)
    assert report.action == "delete" and report.exact and gone in report.changed["intents"]["gone"]
    assert report.snapshot is not None and report.examples_removed > 0
    assert {r["task"] for r in report.holdout_accuracy} == {1, 2, 3}
    others = [r for r, y in enumerate(test_labels) if y != gone]
    assert_same_answers(a, b, test_x[others])
    assert a.state.holdout == {k: v for k, v in a.state.holdout.items()}  # slices kept, minus its rows
    assert sum(len(v) for v in a.state.holdout.values()) == sum(len(v) for v in b.state.holdout.values())
    reopened = IntentLearner.open(a.path, encoder=encoder)
    assert_same_answers(reopened, b, test_x[others])
    reopened.rollback()  # the edit undone: the intent is back, answers as before it
    assert gone in reopened.labels


def test_remove_examples_is_exact(tmp_path, encoder, data):
    learns, _, _, test_x = data
    a = learn_all(tmp_path / "a", encoder, learns)
    chosen = random.Random(0).sample(a.examples(), 50)
    dropped = {(e.text, e.label) for e in chosen}
    b = learn_all(tmp_path / "b", encoder, learns, keep=lambda t, y: (t, y) not in dropped)
    report = a.remove_examples(ids=[e.id for e in chosen])
    assert report.examples_removed == 50 and report.examples_total == len(b.examples())
    assert_same_answers(a, b, test_x)


def test_rename_and_relabel_are_exact(tmp_path, encoder, data):
    learns, _, _, test_x = data
    old, into = learns[0][1][0], learns[2][1][0]
    a = learn_all(tmp_path / "a", encoder, learns)
    a.rename_intent(old, "renamed")
    b = learn_all(tmp_path / "b", encoder, learns, rename={(t, old): "renamed" for t in learns[0][0]})
    assert_same_answers(a, b, test_x)

    # Relabel ten examples of one intent as another (and a split: five more as a new intent).
    moved = [e for e in a.examples(intent=into)][:10]
    split = [e for e in a.examples(intent=into)][10:15]
    a.relabel(ids=[e.id for e in moved], to="renamed")
    a.relabel(texts=[e.text for e in split], to="brand-new")
    new = {(e.text, into): "renamed" for e in moved} | {(e.text, into): "brand-new" for e in split}
    c = learn_all(tmp_path / "c", encoder, learns, rename={**{(t, old): "renamed" for t in learns[0][0]}, **new})
    assert_same_answers(a, c, test_x)
    assert len(a.examples(intent="brand-new")) == 5


def test_merge_gives_one_intent_and_bad_input_changes_nothing(tmp_path, encoder, data):
    learns, _, _, _test_x = data
    a = learn_all(tmp_path / "a", encoder, learns[:1])
    x, y = learns[0][1][0], learns[0][1][-1]
    state = (a.path / "state.json").read_bytes()
    for call, match in [
        (lambda: a.delete_intent("nope"), "label: no intent named 'nope'"),
        (lambda: a.rename_intent(x, y), "is `merge_intents`"),
        (lambda: a.rename_intent(x, "unknown"), "unknown"),
        (lambda: a.merge_intents([x], into="m"), "at least two"),
        (lambda: a.remove_examples(ids=["0123456789abcdef"]), "ids: no example"),
        (lambda: a.relabel(texts=["never said"], to=y), "texts: no example"),
        (lambda: a.remove_examples(ids=[e.id for e in a.examples()]), "every example"),
        (lambda: a.examples(intent="nope"), "intent: no intent"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            call()
        assert (a.path / "state.json").read_bytes() == state
    n = len(a.examples(intent=x)) + len(a.examples(intent=y))
    report = a.merge_intents([x, y], into="both")
    assert set(report.changed["intents"]["gone"]) == {x, y} and "both" in a.labels
    assert len(a.examples(intent="both")) == n and len(a.labels) == 9
    info = {i.label: i for i in a.intents()}
    assert info["both"].examples == n and info["both"].tasks == ["t0"]


def test_purge_leaves_no_byte_of_the_text(tmp_path, encoder, data):
    learns, _, _, _test_x = data
    a = learn_all(tmp_path / "a", encoder, learns[:2], holdout=0.2)
    a.snapshot("before")
    secret = learns[0][0][3]
    a.predict([secret, secret + " please"])  # the text's embedding is cached now (by a hash of it)
    report = a.remove_examples(texts=[secret], purge=True)
    assert report.purged and report.purged["snapshots rewritten"] >= 2  # "before" and the automatic one
    assert report.purged["embedding cache"] == 1
    a.close()
    needle = secret.encode("utf-8")
    hits = [p for p in (tmp_path / "a").rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert hits == []
    again = IntentLearner.open(tmp_path / "a", encoder=encoder)
    assert all(e.text != secret for e in again.examples())
    again.restore("before")  # a rewritten snapshot restores, without the erased text
    assert all(e.text != secret for e in again.examples()) and len(again.labels) == 20
    again.learn(["one more example of it"], [learns[0][1][0]])


def small_learns(learns, intents: int = 3, rows: int = 20) -> list[tuple[list[str], list[str], np.ndarray]]:
    """One learn per intent of the second CLINC150 learn, ``rows`` examples each (new intents)."""
    texts, labels, x = learns[1]
    out = []
    for label in list(dict.fromkeys(labels))[:intents]:
        picked = [r for r, y in enumerate(labels) if y == label][:rows]
        out.append(([texts[r] for r in picked], [label] * len(picked), x[picked]))
    return out


def test_the_gram_matrix_is_a_checkpoint_and_learns_since_are_folded_in(tmp_path, encoder, data, monkeypatch):
    """Small learns keep the last statistics checkpoint (no 26 MB write each); a process that opens
    the workspace later folds the learns since into it, and answers like one that never closed."""
    learns, _, _, test_x = data
    a = learn_all(tmp_path / "a", encoder, learns[:1])
    b = learn_all(tmp_path / "b", encoder, learns[:1])
    checkpoint = a.state.statistics
    small = small_learns(learns)
    for i, (texts, labels, x) in enumerate(small[:2]):
        for learner in (a, b):
            learner.learn_vectors(x, labels, task=f"s{i}", texts=texts)
    assert a.state.statistics == checkpoint and a.state.statistics_task == 1
    assert len(list((a.path / "statistics").iterdir())) == 1
    a.close()
    a = IntentLearner.open(tmp_path / "a", encoder=encoder)
    texts, labels, x = small[2]
    for learner in (a, b):
        learner.learn_vectors(x, labels, task="s2", texts=texts)
    assert_same_answers(a, b, test_x)
    derived, kept = a._with_statistics().statistics()["gram_upper"], b.strategy.statistics()["gram_upper"]
    assert float((derived - kept).abs().max()) < 1e-6 * float(kept.abs().max())  # Chroma's copies: last bits

    monkeypatch.setattr("agent_il.upkeep.CHECKPOINT_ROWS", 40)  # the learns since now reach it
    texts, labels, x = small_learns(learns, intents=4)[3]
    a.learn_vectors(x, labels, task="s3", texts=texts)
    assert a.state.statistics != checkpoint and a.state.statistics_task == a.state.tasks[-1].id
    monkeypatch.undo()

    a.rename_intent(labels[0], "renamed")  # an edit may drop examples: it always writes one
    assert a.state.statistics_task == a.state.tasks[-1].id
    written = a.state.statistics
    a.learn_vectors(small[0][2], small[0][1], task="s4", texts=small[0][0])
    a.close()
    (a.path / written).unlink()  # lost: derived again from every stored example
    a = IntentLearner.open(tmp_path / "a", encoder=encoder)
    b.learn_vectors(x, labels, task="s3", texts=texts)
    b.rename_intent(labels[0], "renamed")
    b.learn_vectors(small[0][2], small[0][1], task="s4", texts=small[0][0])
    assert_same_answers(a, b, test_x)
    texts, labels, x = small_learns(learns, intents=5)[4]
    for learner in (a, b):
        learner.learn_vectors(x, labels, task="s5", texts=texts)
    assert_same_answers(a, b, test_x)
