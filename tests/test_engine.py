"""The learning rules themselves, on plain vectors: EWC algebra, growth, the closed-form head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent_il import IntentLearner
from agent_il.strategies import REGISTRY, make
from agent_il.strategies.ewc import OnlineEWC
from agent_il.strategies.neural import _Head


def blobs(n_classes: int, per_class: int, dim: int = 16, seed: int = 0, offset: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).normal(size=(100, dim)) * 3
    x = np.concatenate([centres[offset + c] + rng.normal(size=(per_class, dim)) for c in range(n_classes)])
    y = [f"c{offset + c}" for c in range(n_classes) for _ in range(per_class)]
    return x.astype(np.float32), y


def test_head_growth_keeps_old_outputs_and_starts_new_rows_at_prototypes():
    torch.manual_seed(0)
    head = _Head(8, 16, 3, scale=16.0)
    x = torch.randn(6, 8)
    before = head(x).detach()
    y = torch.tensor([3, 3, 3, 4, 4, 4])
    head.grow(5, x, y)
    after = head(x).detach()
    assert after.shape == (6, 5) and torch.allclose(after[:, :3], before, atol=1e-6)
    proto = torch.nn.functional.normalize(head.body(x[:3]).mean(0), dim=0)
    assert torch.allclose(head.out[3], proto, atol=1e-6)


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_away_from_it():
    torch.manual_seed(0)
    head = _Head(4, 8, 2, scale=16.0)
    ewc = OnlineEWC(lam=10.0)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    ewc.consolidate(head, x, y)
    assert ewc.penalty(head).item() == 0.0
    with torch.no_grad():
        head.out += 0.1
    expected = 10.0 * (ewc.fisher["out"] * 0.01).sum()
    assert torch.isclose(ewc.penalty(head), expected)


def test_ewc_fisher_is_the_mean_squared_gradient_and_accumulates_online():
    torch.manual_seed(0)
    head = _Head(4, 8, 3, scale=16.0)
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
    head.grow(5, x, y)  # a new task adds classes: old importance decays by gamma, new units start at zero
    ewc.consolidate(head, x, y)
    task2 = OnlineEWC(lam=1.0)
    task2.consolidate(head, x, y)
    assert ewc.fisher["out"].shape == (5, 8)
    assert torch.allclose(ewc.fisher["body.0.weight"], 0.5 * manual["body.0.weight"] + task2.fisher["body.0.weight"])
    old_rows = 0.5 * manual["out"] + task2.fisher["out"][:3]
    assert torch.allclose(ewc.fisher["out"][:3], old_rows)
    assert torch.allclose(ewc.fisher["out"][3:], task2.fisher["out"][3:])
    assert torch.equal(ewc.anchor["out"], head.out.detach())


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
    scores, top = {}, {}
    for name, tasks in runs.items():
        learner = IntentLearner.open(tmp_path / name, strategy="ridge")
        for x, y in tasks:
            learner.learn_vectors(x, y)
        order = np.argsort(learner.labels)  # columns by label, whatever order they arrived in
        scores[name] = learner.strategy.raw_scores(torch.from_numpy(probe))[:, order]
        top[name] = [p.top_k[0][0] for p in learner.predict_vectors(probe, k=1, evidence=0)]
    assert torch.allclose(scores["ab"], scores["ba"], atol=1e-4)
    assert torch.allclose(scores["ab"], scores["joint"], atol=1e-4)
    assert top["ab"] == top["ba"] == top["joint"]


def test_vector_workspace_without_texts(tmp_path):
    learner = IntentLearner.open(tmp_path / "kb")
    x, y = blobs(3, 30)
    learner.learn_vectors(x, y, task="sensors")
    x2, y2 = blobs(2, 30, offset=3)
    learner.learn_vectors(x2, y2)
    test_x, test_y = blobs(5, 10, seed=9)
    preds = learner.predict_vectors(test_x, k=2, evidence=1)
    assert np.mean([p.top_k[0][0] == t for p, t in zip(preds, test_y)]) > 0.9
    assert preds[0].evidence[0].text is None
    assert learner.state.dim == 16
