"""Continual-learning metrics on hand-made accuracy matrices with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from agent_il.bench.protocol import default_task_count, task_order
from agent_il.engine.metrics import AccuracyMatrix


def matrix(*rows: dict[int, float]) -> AccuracyMatrix:
    return AccuracyMatrix.from_state(
        [{"after_task": i + 1, "accuracy": {str(k): v for k, v in r.items()}} for i, r in enumerate(rows)]
    )


def test_three_tasks_with_forgetting():
    m = matrix({1: 90.0}, {1: 80.0, 2: 95.0}, {1: 70.0, 2: 85.0, 3: 100.0})
    assert m.grid() == [[90.0, None, None], [80.0, 95.0, None], [70.0, 85.0, 100.0]]
    assert m.final_accuracy() == pytest.approx(85.0)
    assert m.average_incremental_accuracy() == pytest.approx((90.0 + 87.5 + 85.0) / 3)
    assert m.forgetting() == pytest.approx(((90 - 70) + (95 - 85)) / 2)  # best earlier minus final
    assert m.backward_transfer() == pytest.approx(((70 - 90) + (85 - 95)) / 2)  # final minus just-learned


def test_forgetting_uses_the_best_earlier_accuracy_not_the_first():
    m = matrix({1: 60.0}, {1: 90.0, 2: 80.0}, {1: 75.0, 2: 85.0, 3: 70.0})
    assert m.forgetting() == pytest.approx(((90 - 75) + (80 - 85)) / 2)
    assert m.backward_transfer() == pytest.approx(((75 - 60) + (85 - 80)) / 2)


def test_one_task_has_no_forgetting_and_empty_has_nothing():
    assert matrix({1: 88.0}).forgetting() is None and matrix({1: 88.0}).final_accuracy() == 88.0
    empty = matrix()
    assert empty.final_accuracy() is None and empty.forgetting() is None and empty.grid() == []


def test_task_splits_are_equal_seeded_and_cover_every_class():
    assert default_task_count(150) == 15 and default_task_count(77) == 7 and default_task_count(12) == 1
    labels = np.array([f"c{i}" for i in range(77)] * 2)
    a, b = task_order(labels, 7, seed=0), task_order(labels, 7, seed=1)
    assert [len(t) for t in a] == [11] * 7 and sorted(c for t in a for c in t) == sorted(set(labels.tolist()))
    assert a != b and a == task_order(labels, 7, seed=0)
