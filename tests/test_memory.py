"""Exemplar memory: budgets, herding, and the knowledge base as evidence."""

from __future__ import annotations

import numpy as np
import pytest

from agent_il import IntentLearner
from agent_il.config import MemoryBudget
from agent_il.errors import InvalidInputError
from agent_il.memory.selection import herding, select
from tests.helpers import records_held


def test_herding_tracks_the_class_mean_better_than_random(encoder, clinc):
    texts, _ = clinc.split("train", clinc.tasks[0][:1])
    x = encoder.encode(texts)
    mean = x.mean(axis=0)
    picked = herding(x, 10)
    assert len(set(picked.tolist())) == 10
    herd_err = np.linalg.norm(x[picked].mean(axis=0) - mean)
    rng = np.random.default_rng(0)
    random_errs = [np.linalg.norm(x[rng.permutation(len(x))[:10]].mean(axis=0) - mean) for _ in range(50)]
    assert herd_err < np.percentile(random_errs, 5)


def test_selection_keeps_a_prefix_order_and_caps_at_class_size():
    x = np.random.default_rng(1).normal(size=(7, 4))
    assert len(herding(x, 20)) == 7
    assert (herding(x, 5) == herding(x, 7)[:5]).all()
    with pytest.raises(InvalidInputError):
        select(x, 3, "best", np.random.default_rng(0))


def test_budget_needs_exactly_one_limit():
    with pytest.raises(InvalidInputError):
        MemoryBudget(per_class=None, total=None)
    with pytest.raises(InvalidInputError):
        MemoryBudget(per_class=5, total=50)
    assert MemoryBudget(per_class=None, total=100).quota(30) == 3


@pytest.mark.parametrize("selection", ["herding", "random"])
def test_per_class_budget(clinc, encoder, workspace_dir, selection):
    learner = IntentLearner.open(
        workspace_dir, strategy="replay", memory_per_class=7, selection=selection, encoder=encoder
    )
    learner.learn(*clinc.split("train", clinc.tasks[0][:4]))
    learner.learn(*clinc.split("train", clinc.tasks[1][:4]))
    assert learner.exemplar_counts() == {label: 7 for label in learner.labels}
    assert records_held(learner)["examples"] == len(learner.state.live("examples"))


def test_total_budget_rebalances_as_classes_arrive(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, strategy="replay", memory_total=40, encoder=encoder)
    learner.learn(*clinc.split("train", clinc.tasks[0][:4]))
    first = dict(learner.state.exemplars)
    assert set(learner.exemplar_counts().values()) == {10}
    learner.learn(*clinc.split("train", clinc.tasks[1][:4]))
    assert set(learner.exemplar_counts().values()) == {5}
    # Trimmed exemplars are still examples: the memory holds no copy of them to delete.
    trimmed = [i for label, ids in first.items() for i in ids if i not in learner.state.exemplars[label]]
    assert len(trimmed) == 20 and learner.memory.load(trimmed).labels == [
        y for y, ids in first.items() for i in ids if i in trimmed
    ]
    assert learner.memory.count() == 0
    for label, ids in first.items():  # old classes keep the head of their herding order
        assert learner.state.exemplars[label] == ids[:5]


def test_exemplars_keep_text_label_task_and_time(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    texts, labels = clinc.split("train", clinc.tasks[0][:3])
    learner.learn(texts, labels, task="banking")
    got = learner.memory.load(learner.state.live("exemplars"), from_chroma=True)  # read from the examples
    assert len(got.ids) == 60 and records_held(learner)["examples"] == len(texts)
    for doc, meta, emb in zip(got.texts, got.metadatas, got.x):
        assert doc in texts and meta["label"] == labels[texts.index(doc)]
        assert meta["task"] == "banking" and meta["task_id"] == 1 and meta["time"] > 0
        assert np.allclose(emb, encoder.encode([doc])[0], atol=1e-6)


def test_predictions_bring_nearest_exemplars_as_evidence(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    learner.learn(*clinc.split("train", clinc.tasks[0]), task="first")
    texts, labels = clinc.split("test", clinc.tasks[0])
    preds = learner.predict(texts[:30], k=3, evidence=4)
    for pred in preds:
        assert len(pred.top_k) == 3 and pred.top_k[0][1] == pred.confidence
        assert pred.label == (pred.top_k[0][0] if pred.known else "unknown")
        assert pred.top_k[0][1] >= pred.top_k[1][1] >= pred.top_k[2][1]
        assert len(pred.evidence) == 4
        sims = [e.similarity for e in pred.evidence]
        assert sims == sorted(sims, reverse=True) and all(e.task == "first" for e in pred.evidence)
    agree = np.mean([p.evidence[0].label == y for p, y in zip(preds, labels)])
    assert agree >= 0.8
    assert learner.predict(texts[:2], k=99, evidence=0)[0].evidence == []
    assert len(learner.predict(texts[:2], k=99)[0].top_k) == 10


def test_large_memories_take_evidence_from_chroma_and_only_committed_records(
    clinc, encoder, workspace_dir, monkeypatch
):
    from agent_il.memory.records import Records
    from agent_il.ood import evidence

    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    learner.learn(*clinc.split("train", clinc.tasks[0]), task="first")
    texts = clinc.split("test", clinc.tasks[0])[0][:40]
    exact = learner.predict(texts, evidence=3, inbox=False)
    monkeypatch.setattr(evidence, "EXACT_ROWS", 0)  # this memory counts as large: Chroma's index answers
    learner._evidence = None
    indexed = learner.predict(texts, evidence=3, inbox=False)
    same = [[e.text for e in a.evidence] == [e.text for e in b.evidence] for a, b in zip(exact, indexed)]
    assert np.mean(same) >= 0.9  # HNSW is approximate; on 200 exemplars it is all but exact
    for a, b in zip(exact, indexed):
        assert [e.similarity for e in b.evidence] == sorted((e.similarity for e in b.evidence), reverse=True)
        if a.evidence[0].text == b.evidence[0].text:
            assert b.evidence[0].similarity == pytest.approx(a.evidence[0].similarity, abs=1e-5)
    # records another writer added but no commit names yet are never evidence, even the closest
    # ones; the first query is crowded by more of them than the extra hits asked for (exact scan)
    x = encoder.encode(texts)
    x = np.concatenate([x, np.repeat(x[:1], evidence.SLACK + 4, axis=0)])
    meta = [{"label": "g", "task": "t"}] * len(x)
    ghosts = Records([f"ghost-{i}" for i in range(len(x))], x, ["ghost"] * len(x), meta)
    learner.memory.add(ghosts, generation=learner.state.generation + 1)
    crowded = learner.predict(texts, evidence=3, inbox=False)
    for pred in crowded:
        assert len(pred.evidence) == 3 and all(e.text != "ghost" for e in pred.evidence)
    assert [e.text for e in crowded[0].evidence] == [e.text for e in exact[0].evidence]
