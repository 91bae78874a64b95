"""The contract every learning rule must pass, in the spirit of scikit-learn's ``check_estimator``.

The learner, the workspace, rejection and the benchmark treat all strategies alike, so a new one
(or a change to one) is only safe once ``check_strategy(factory)`` passes: configuration rebuilds
it, learning grows the label space without forgetting where it promises not to, the learned state
survives safetensors, a deep copy is independent of its original, and no input is modified.

Every check takes a zero-argument ``factory`` returning a fresh, unfitted strategy (small configs
keep it fast) and raises :class:`AssertionError` naming the strategy and the check.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Sequence

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from agent_il.strategies.base import Revision, Strategy
from agent_il.strategies.ridge import balance_weight

Factory = Callable[[], Strategy]
Check = Callable[[Factory], None]
Task = tuple[Tensor, Tensor]

DIM = 16
MIN_ACCURACY = 0.9  # the blobs are far apart: any working rule scores close to 1
SCORE_TOLERANCE = 1e-4


class _Failed(AssertionError):
    """A check's own failure, before the strategy's and check's names are prefixed."""


def _require(condition: bool, message: str) -> None:
    # Not ``assert``: the checks must still check under ``python -O``.
    if not condition:
        raise _Failed(message)


def _strategy_name(strategy: Strategy) -> str:
    return str(getattr(type(strategy), "name", type(strategy).__name__))


# ------------------------------------------------------------------------------ synthetic data
def _centres() -> Tensor:
    gen = torch.Generator().manual_seed(1234)
    return torch.nn.functional.normalize(torch.randn(3, DIM, generator=gen), dim=1)


def blobs(counts: dict[int, int], seed: int) -> Task:
    """Unit-normalised Gaussian blobs around three fixed centres: ``counts[c]`` rows of class c."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in sorted(counts.items())])
    x = _centres()[y] + 0.1 * torch.randn(len(y), DIM, generator=gen)
    return torch.nn.functional.normalize(x, dim=1), y


def two_tasks() -> tuple[Task, Task, Task]:
    """Task 1: classes 0 and 1. Task 2: new class 2 and more of known class 1. Plus the exemplar
    memory (a few task-1 rows) that the learner hands over as replay for task 2."""
    first, second = blobs({0: 24, 1: 24}, seed=1), blobs({1: 12, 2: 24}, seed=2)
    keep = torch.cat([torch.arange(0, 8), torch.arange(24, 32)])
    return first, second, (first[0][keep], first[1][keep])


def _fit_two(strategy: Strategy) -> tuple[Task, Task]:
    first, second, memory = two_tasks()
    strategy.fit(first[0], first[1], 2, None)
    strategy.fit(second[0], second[1], 3, memory)
    return first, second


def _accuracy(strategy: Strategy, task: Task) -> float:
    return float((strategy.raw_scores(task[0]).argmax(1) == task[1]).float().mean())


def _counts_in_learn(y: Tensor, n_classes: int) -> Tensor:
    return torch.bincount(y, minlength=n_classes)[y]


def _is_exact(strategy: Strategy, task: Task, n_classes: int) -> bool:
    """A rule that gives leave-one-out scores claims closed-form exactness: it forgets nothing."""
    return strategy.leave_one_out(task[0], task[1], _counts_in_learn(task[1], n_classes)) is not None


# ---------------------------------------------------------------------------------- the checks
def check_config_round_trip(factory: Factory) -> None:
    """``type(s)(**config())`` through JSON rebuilds an equal config, before and after a fit: the
    workspace stores only the config and the tensors."""
    strategy = factory()
    config = strategy.config()
    try:
        text = json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise _Failed(f"config() is not JSON-serialisable: {exc}") from exc
    rebuilt = type(strategy)(**json.loads(text))
    _require(rebuilt.config() == config, f"rebuilt config {rebuilt.config()} != {config}")
    _fit_two(strategy)
    _require(strategy.config() == config, f"fitting changed config() from {config} to {strategy.config()}")


def check_fresh_instance(factory: Factory) -> None:
    """An unfitted strategy knows no class and has usable class-level settings."""
    strategy = factory()
    _require(isinstance(strategy, Strategy), f"{type(strategy).__name__} is not an agent_il Strategy")
    _require(strategy.n_classes == 0, f"n_classes is {strategy.n_classes} before any fit")
    _require(isinstance(strategy.uses_replay, bool), "uses_replay is not a bool")
    temp = float(strategy.score_temperature)
    _require(math.isfinite(temp) and temp > 0, f"score_temperature {temp} is not a positive number")


def check_incremental_fit(factory: Factory) -> None:
    """Two learns, the second adding a class: n_classes grows, scores have the documented shapes
    and relation, and the blobs are classified (old classes too where the rule replays or is exact)."""
    strategy = factory()
    first, second, memory = two_tasks()
    strategy.fit(first[0], first[1], 2, None)
    _require(strategy.n_classes == 2, f"n_classes is {strategy.n_classes} after a learn of 2 classes")
    shape = tuple(strategy.raw_scores(first[0][:5]).shape)
    _require(shape == (5, 2), f"raw_scores of 5 rows has shape {shape} after task 1, expected (5, 2)")
    strategy.fit(second[0], second[1], 3, memory)
    _require(strategy.n_classes == 3, f"n_classes is {strategy.n_classes} after growing to 3")
    x = torch.cat([first[0], second[0]])
    raw, logits = strategy.raw_scores(x), strategy.logits(x)
    _require(tuple(raw.shape) == (len(x), 3), f"raw_scores shape {tuple(raw.shape)}, expected {(len(x), 3)}")
    _require(tuple(logits.shape) == tuple(raw.shape), f"logits shape {tuple(logits.shape)} != raw_scores shape")
    _require(bool(torch.isfinite(raw).all()), "raw_scores are not all finite")
    temp = float(strategy.temperature)
    _require(math.isfinite(temp) and temp > 0, f"temperature {temp} is not a positive number")
    _require(torch.allclose(logits, raw / temp, rtol=1e-5, atol=1e-6), "logits(x) != raw_scores(x) / temperature")
    newest = _accuracy(strategy, second)
    _require(newest >= MIN_ACCURACY, f"training accuracy {newest:.2f} on the newest task < {MIN_ACCURACY}")
    if strategy.uses_replay or _is_exact(strategy, second, 3):
        old = _accuracy(strategy, first)
        _require(old >= MIN_ACCURACY, f"accuracy {old:.2f} on the first task < {MIN_ACCURACY}: it was forgotten")


def check_inputs_not_mutated(factory: Factory) -> None:
    """fit, raw_scores, logits and leave_one_out read their tensors and never write them: the
    learner passes views of its exemplar memory."""
    strategy = factory()
    first, second, memory = two_tasks()
    inputs = {"x": second[0], "y": second[1], "replay x": memory[0], "replay y": memory[1]}
    counts = _counts_in_learn(second[1], 3)
    before = {name: t.clone() for name, t in {**inputs, "counts": counts}.items()}
    strategy.fit(first[0], first[1], 2, None)
    strategy.fit(second[0], second[1], 3, memory)
    strategy.raw_scores(second[0])
    strategy.logits(second[0])
    strategy.leave_one_out(second[0], second[1], counts)
    for name, t in {**inputs, "counts": counts}.items():
        _require(torch.equal(t, before[name]), f"the input {name!r} was modified")


def _fresh_from_tensors(factory: Factory, strategy: Strategy) -> Strategy:
    """A copy through safetensors bytes, as a reopened workspace's head: tensors(), then the
    statistics the next fit needs (a workspace keeps them apart, for its newest generation)."""
    data = save_safetensors({k: v.contiguous() for k, v in strategy.tensors().items()})
    fresh = factory()
    fresh.load_tensors(load_safetensors(data))
    if not fresh.has_statistics:
        fresh.load_statistics(load_safetensors(save_safetensors(strategy.statistics())))
    _require(fresh.has_statistics, "has_statistics is False after load_statistics(statistics())")
    return fresh


def check_tensors_round_trip(factory: Factory) -> None:
    """tensors() through safetensors bytes into a fresh instance predicts identically, and learns
    on as the original does: reopening a workspace must not change what it knows."""
    strategy = factory()
    first, second = _fit_two(strategy)
    x = torch.cat([first[0], second[0]])
    for key, value in strategy.tensors().items():
        _require(isinstance(value, Tensor), f"tensors()[{key!r}] is a {type(value).__name__}, not a Tensor")
    try:
        fresh = _fresh_from_tensors(factory, strategy)
    except Exception as exc:
        raise _Failed(f"tensors() do not survive safetensors bytes: {type(exc).__name__}: {exc}") from exc
    _require(fresh.n_classes == strategy.n_classes, f"reloaded n_classes {fresh.n_classes} != {strategy.n_classes}")
    _require(torch.equal(fresh.raw_scores(x), strategy.raw_scores(x)), "reloaded raw_scores differ")
    _require(fresh.temperature == strategy.temperature, "reloaded temperature differs")
    third = blobs({0: 8, 2: 8}, seed=3)
    strategy.fit(third[0], third[1], 3, None)
    fresh.fit(third[0], third[1], 3, None)
    diff = float((fresh.raw_scores(x) - strategy.raw_scores(x)).abs().max())
    _require(diff <= SCORE_TOLERANCE, f"after one more learn the reloaded copy's scores differ by {diff:.2e}")


def check_deepcopy_isolates(factory: Factory) -> None:
    """The learner fits a deep copy so that a failed learn leaves the old strategy untouched."""
    strategy = factory()
    first, second, memory = two_tasks()
    strategy.fit(first[0], first[1], 2, None)
    scores, temp = strategy.raw_scores(first[0]), strategy.temperature
    tensors = {k: v.clone() for k, v in strategy.tensors().items()}
    clone = copy.deepcopy(strategy)
    clone.fit(second[0], second[1], 3, memory)
    _require(clone.n_classes == 3, f"the copy has n_classes {clone.n_classes} after growing to 3")
    _require(strategy.n_classes == 2, f"fitting a copy changed the original's n_classes to {strategy.n_classes}")
    _require(torch.equal(strategy.raw_scores(first[0]), scores), "fitting a copy changed the original's scores")
    _require(strategy.temperature == temp, "fitting a copy changed the original's temperature")
    after = strategy.tensors()
    for key, value in tensors.items():
        _require(key in after and torch.equal(after[key], value), f"fitting a copy changed the tensor {key!r}")


def _one_per_class_learns() -> list[Task]:
    """Learns holding one row of each class, so every class has the same size (1) in every learn:
    dropping a row changes no other row's class weight, and a refit without it is the exact
    meaning of 'as if it was left out'."""
    return [blobs({0: 1, 1: 1, 2: 1}, seed=10 + i) for i in range(4)]


def _fit_learns(strategy: Strategy, learns: Sequence[Task]) -> None:
    for x, y in learns:
        strategy.fit(x, y, 3, None)


def check_leave_one_out(factory: Factory) -> None:
    """None, or raw scores of the fitted rows (n x n_classes) that match refitting without each row
    (and without each group of rows, for ``groups``)."""
    strategy = factory()
    _, second = _fit_two(strategy)
    loo = strategy.leave_one_out(second[0], second[1], _counts_in_learn(second[1], 3))
    if loo is None:
        return
    _require(isinstance(loo, Tensor), f"leave_one_out returned a {type(loo).__name__}")
    shape = tuple(loo.shape)
    _require(shape == (len(second[0]), 3), f"leave_one_out shape {shape}, expected {(len(second[0]), 3)}")
    _require(bool(torch.isfinite(loo).all()), "leave_one_out scores are not all finite")
    learns = _one_per_class_learns()
    full = factory()
    _fit_learns(full, learns)
    for k, j in ((0, 0), (1, 1), (3, 2)):  # a few rows; each refit costs a full sequence of learns
        x, y = learns[k]
        row = slice(j, j + 1)
        got = full.leave_one_out(x[row], y[row], torch.ones(1, dtype=torch.long))
        _require(got is not None, "leave_one_out gave scores once and None another time")
        assert got is not None  # for the type checker
        keep = torch.arange(len(y)) != j
        refit = factory()
        _fit_learns(refit, [*learns[:k], (x[keep], y[keep]), *learns[k + 1 :]])
        want = refit.raw_scores(x[row]).double()
        diff = float((got.double() - want).abs().max())
        scale = 1.0 + float(want.abs().max())
        _require(diff <= 1e-3 * scale, f"leave-one-out scores of learn {k} row {j} differ from a refit by {diff:.2e}")
    # a group: two rows of a learn left out together, and a row the fit never saw (count 0) scored
    # as if they were left out
    x, y = learns[2]
    rows = torch.cat([x[:2], x[2:] + 0.5])
    got = full.leave_one_out(rows, y, torch.tensor([1, 1, 0]), torch.zeros(3, dtype=torch.long))
    _require(got is not None, "leave_one_out gave scores once and None another time")
    assert got is not None
    refit = factory()
    _fit_learns(refit, [*learns[:2], (x[2:], y[2:]), *learns[3:]])
    want = refit.raw_scores(rows).double()
    diff = float((got.double() - want).abs().max())
    _require(diff <= 1e-3 * (1.0 + float(want.abs().max())), f"scores left out as a group differ by {diff:.2e}")


def check_revise(factory: Factory) -> None:
    """revise() retiring a class: the head follows the column map; with ``exact_edits`` it equals
    the head fitted on the same learns without that class's rows."""
    learns = _one_per_class_learns()
    strategy = factory()
    _fit_learns(strategy, learns)
    gone = [(x[y == 2], y[y == 2]) for x, y in learns]
    kept = [(x[y != 2], y[y != 2]) for x, y in learns]
    w = torch.full((len(learns),), balance_weight(1), dtype=torch.float64)
    x_gone = torch.cat([x for x, _ in gone])
    recent = (kept[-1][0], kept[-1][1], torch.full((len(kept[-1][1]),), balance_weight(1), dtype=torch.float64))
    change = Revision(
        x_gone, torch.full((len(learns),), 2), w, torch.full((len(learns),), -1), torch.zeros_like(w), recent
    )
    strategy.revise([0, 1], change, (torch.cat([x for x, _ in kept]), torch.cat([y for _, y in kept])))
    _require(strategy.n_classes == 2, f"after retiring a class n_classes is {strategy.n_classes}, not 2")
    x = torch.cat([x for x, _ in kept])
    scores = strategy.raw_scores(x)
    _require(bool(torch.isfinite(scores).all()), "scores after revise() are not all finite")
    if strategy.exact_edits:
        refit = factory()
        for xs, ys in kept:
            refit.fit(xs, ys, 2, None)
        diff = float((scores.double() - refit.raw_scores(x).double()).abs().max())
        _require(diff <= SCORE_TOLERANCE, f"an exact revise() differs from a refit without the rows by {diff:.2e}")
        _require(abs(strategy.temperature - refit.temperature) < 1e-9, "an exact revise() refits another temperature")


CHECKS: tuple[Check, ...] = (
    check_fresh_instance,
    check_config_round_trip,
    check_incremental_fit,
    check_inputs_not_mutated,
    check_tensors_round_trip,
    check_deepcopy_isolates,
    check_leave_one_out,
    check_revise,
)


def check_strategy(factory: Factory, checks: Sequence[Check] = CHECKS) -> None:
    """Run every check on fresh strategies from ``factory``; the first failure raises an
    :class:`AssertionError` that names the strategy and the check."""
    name = _strategy_name(factory())
    for check in checks:
        try:
            check(factory)
        except _Failed as exc:
            raise AssertionError(f"strategy {name!r} fails {check.__name__}: {exc}") from exc
        except Exception as exc:
            raise AssertionError(f"strategy {name!r} fails {check.__name__}: {type(exc).__name__}: {exc}") from exc


__all__ = ["CHECKS", "check_strategy"]
