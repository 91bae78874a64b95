"""The headline behaviour: three real CLINC150 tasks of 10 intents learned in sequence."""

from __future__ import annotations

import json

import pytest

from agent_il import IntentLearner
from agent_il.strategies import DEFAULT_STRATEGY, REGISTRY
from tests.helpers import accuracy

pytestmark = pytest.mark.slow


def run_three_tasks(clinc, encoder, path, strategy: str) -> list[list[float]]:
    """Accuracy matrix R[i][j]: accuracy on task j's test set after learning task i."""
    learner = IntentLearner.open(path, strategy=strategy, encoder=encoder)
    matrix = []
    for i, classes in enumerate(clinc.tasks[:3]):
        learner.learn(*clinc.split("train", classes), task=f"clinc-{i + 1}")
        matrix.append([accuracy(learner, *clinc.split("test", clinc.tasks[j])) for j in range(i + 1)])
    learner.close()
    return matrix


@pytest.fixture(scope="module")
def matrices(clinc, encoder, tmp_path_factory) -> dict[str, list[list[float]]]:
    out = {name: run_three_tasks(clinc, encoder, tmp_path_factory.mktemp(name) / "kb", name) for name in REGISTRY}
    print("\n3-task CLINC150 accuracy matrices:\n" + json.dumps(out, indent=1))
    return out


def test_default_strategy_keeps_task_one(matrices):
    r = matrices[DEFAULT_STRATEGY]
    assert r[0][0] >= 90.0
    assert r[0][0] - r[2][0] <= 5.0, r


def test_naive_forgets_task_one(matrices):
    r = matrices["naive"]
    assert r[0][0] - r[2][0] > 30.0, r


@pytest.mark.parametrize("name", ["replay", "ewc-replay", "ridge"])
def test_memory_based_strategies_hold_every_task(matrices, name):
    final = matrices[name][2]
    assert min(final) >= 90.0, final


def test_ewc_alone_is_not_enough_in_one_shared_head(matrices):
    # EWC without replay cannot separate old from new classes in one head (class-incremental).
    assert matrices["ewc"][2][0] < matrices["ewc-replay"][2][0] - 30.0


def test_tasks_are_recorded(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    texts, labels = clinc.split("train", clinc.tasks[0])
    report = learner.learn(texts, labels, task="first")
    second = learner.learn(*clinc.split("train", clinc.tasks[1]))
    assert [t.name for t in learner.tasks] == ["first", "task-2"]
    assert [t.id for t in learner.tasks] == [1, 2]
    assert sorted(report.new_classes) == sorted(clinc.tasks[0])
    assert report.task.counts == {label: labels.count(label) for label in clinc.tasks[0]}
    assert second.classes_total == 20 and learner.tasks[1].examples == len(second.task.classes) * 100
    # more examples of a known intent update it instead of adding a class
    third = learner.learn(texts[:5], labels[:5], task="more")
    assert third.new_classes == [] and third.updated_classes == [labels[0]]
    assert len(learner.labels) == 20
