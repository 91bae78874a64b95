"""The learning rules themselves, on plain vectors: EWC algebra, growth, the closed-form head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent_il import IntentLearner
from agent_il.ewc import OnlineEWC
from agent_il.strategies import REGISTRY, make
from agent_il.strategies.neural import _Head


def blobs(n_classes: int, per_class: int, dim: int = 16, seed: int = 0, offset: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).normal(size=(100, dim)) * 3
    x = np.concatenate([centres[offset + c] + rng.normal(size=(per_class, dim)) for c in range(n_classes)])
    y = [f"c{offset + c}" for c in range(n_classes) for _ in range(per_class)]
    return x.astype(np.float32), y


def test_head_growth_keeps_old_outputs():
    torch.manual_seed(0)
    head = _Head(8, 16, 3)
    x = torch.randn(5, 8)
    before = head(x).detach()
    head.grow(5)
    after = head(x).detach()
    assert after.shape == (5, 5) and torch.allclose(after[:, :3], before, atol=1e-6)


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_away_from_it():
    torch.manual_seed(0)
    head = _Head(4, 8, 2)
    ewc = OnlineEWC(lam=10.0)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    ewc.consolidate(head, x, y)
    assert ewc.penalty(head).item() == 0.0
    with torch.no_grad():
        head.out.weight += 0.1
    expected = 10.0 * (ewc.fisher["out.weight"] * 0.01).sum()
    assert torch.isclose(ewc.penalty(head), expected)


def test_ewc_fisher_is_the_mean_squared_gradient_and_accumulates_online():
    torch.manual_seed(0)
    head = _Head(4, 8, 3)
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    manual = {k: torch.zeros_like(v) for k, v in head.named_parameters()}
    for xi, yi in zip(x, y):
        head.zero_grad()
        torch.nn.functional.cross_entropy(head(xi[None]), yi[None]).backward()
        for k, p in head.named_parameters():
            manual[k] += p.grad**2 / len(x)
    ewc = OnlineEWC(lam=1.0, gamma=0.5)
    ewc.consolidate(head, x, y)
    for k in manual:
        assert torch.allclose(ewc.fisher[k], manual[k], atol=1e-6)
    head.grow(5)  # a new task adds classes: old importance decays by gamma, new units start at zero
    ewc.consolidate(head, x, y)
    task2 = OnlineEWC(lam=1.0)
    task2.consolidate(head, x, y)
    assert ewc.fisher["out.weight"].shape == (5, 8)
    assert torch.allclose(ewc.fisher["body.0.weight"], 0.5 * manual["body.0.weight"] + task2.fisher["body.0.weight"])
    old_rows = 0.5 * manual["out.weight"] + task2.fisher["out.weight"][:3]
    assert torch.allclose(ewc.fisher["out.weight"][:3], old_rows)
    assert torch.allclose(ewc.fisher["out.weight"][3:], task2.fisher["out.weight"][3:])
    assert torch.equal(ewc.anchor["out.weight"], head.out.weight.detach())


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_strategy_learns_and_round_trips(name):
    strategy = make(name)
    x, y = blobs(4, 30)
    yt = torch.tensor([int(label[1:]) for label in y])
    strategy.fit(torch.from_numpy(x), yt, 4, None)
    acc = (strategy.logits(torch.from_numpy(x)).argmax(1) == yt).float().mean()
    assert acc > 0.9
    clone = make(name, strategy.config())
    clone.load_tensors(strategy.tensors())
    assert torch.equal(clone.logits(torch.from_numpy(x)), strategy.logits(torch.from_numpy(x)))


def test_ridge_is_order_invariant_and_equals_joint_training(tmp_path):
    a, ya = blobs(5, 40, seed=1)
    b, yb = blobs(5, 40, seed=2, offset=5)
    probe = np.concatenate([blobs(5, 5, seed=3)[0], blobs(5, 5, seed=3, offset=5)[0]])
    runs = {"ab": [(a, ya), (b, yb)], "ba": [(b, yb), (a, ya)], "joint": [(np.concatenate([a, b]), ya + yb)]}
    scores = {}
    for name, tasks in runs.items():
        learner = IntentLearner.open(tmp_path / name, strategy="ridge")
        for x, y in tasks:
            learner.learn_vectors(x, y)
        preds = learner.predict_vectors(probe, k=10, evidence=0)
        scores[name] = [dict(sorted((lab, round(p, 4)) for lab, p in pred.top_k)) for pred in preds]
    assert scores["ab"] == scores["ba"] == scores["joint"]


def test_vector_workspace_without_texts(tmp_path):
    learner = IntentLearner.open(tmp_path / "kb")
    x, y = blobs(3, 30)
    learner.learn_vectors(x, y, task="sensors")
    x2, y2 = blobs(2, 30, offset=3)
    learner.learn_vectors(x2, y2)
    test_x, test_y = blobs(5, 10, seed=9)
    preds = learner.predict_vectors(test_x, k=2, evidence=1)
    assert np.mean([p.label == t for p, t in zip(preds, test_y)]) > 0.9
    assert preds[0].evidence[0].text is None
    assert learner.state["dim"] == 16
