"""Few-shot draws (`agent-il bench --shots N`, tested end to end in test_bench.py) and the baselines
the benchmark compares against."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent_il.bench import protocol
from agent_il.bench.baselines import BASELINES


def split(n_per_class: int, classes: list[str], seed: int = 0) -> protocol.Split:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(classes), 16)) * 4
    x = np.concatenate([c + rng.standard_normal((n_per_class, 16)) * 0.3 for c in centres]).astype(np.float32)
    return protocol.Split(x, np.repeat(np.array(classes), n_per_class))


def test_few_shot_draws_per_class_and_seed():
    train = split(20, ["a", "b", "c"])
    five = protocol.few_shot(train, 5, seed=0)
    assert sorted(set(five.labels.tolist())) == ["a", "b", "c"] and len(five.labels) == 15
    assert np.array_equal(five.x, protocol.few_shot(train, 5, seed=0).x)  # the same seed, the same draw
    assert not np.array_equal(five.x, protocol.few_shot(train, 5, seed=1).x)
    # a class's draw does not depend on the other classes of the data set
    only_a = protocol.Split(train.x[train.labels == "a"], train.labels[train.labels == "a"])
    assert np.array_equal(protocol.few_shot(only_a, 5, 0).x, five.x[five.labels == "a"])
    assert len(protocol.few_shot(train, 50, 0).labels) == 60  # fewer than N: the whole class


@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_learn_incrementally(name):
    """Each baseline separates well-separated clusters, learned two tasks apart, with no task id."""
    train, test = split(10, list("abcdef")), split(5, list("abcdef"), seed=0)
    run = protocol.run_one(name, train, test, [list("abc"), list("def")], protocol.MemoryBudget(per_class=5))
    assert run.accuracy_per_step == [100.0, 100.0]
    head = protocol.make_strategy(name)
    head.fit(torch.from_numpy(train.x[:10]), torch.zeros(10, dtype=torch.long), 2, None)  # one class seen of two
    assert head.logits(torch.from_numpy(test.x[:3])).argmax(1).tolist() == [0, 0, 0]
