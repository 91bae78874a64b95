"""Every registered strategy passes the strategy contract (agent_il.strategies.checks), and the
contract itself catches rules that break it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from agent_il import strategies
from agent_il.strategies.checks import (
    check_deepcopy_isolates,
    check_incremental_fit,
    check_strategy,
    check_tensors_round_trip,
)
from agent_il.strategies.ridge import RidgeStrategy

# Small but faithful settings: the contract is about behaviour, not capacity.
SMALL: dict[str, dict[str, Any]] = {
    "ridge": {"features": 128},
    "naive": {"hidden": 32, "epochs": 5, "min_steps": 40},
}


def small_config(name: str) -> dict[str, Any]:
    cls = strategies.REGISTRY[name]
    return SMALL.get(name) or SMALL["ridge" if issubclass(cls, RidgeStrategy) else "naive"]


@pytest.mark.parametrize("name", sorted(strategies.REGISTRY))
def test_registered_strategy_keeps_the_contract(name: str) -> None:
    check_strategy(lambda: strategies.make(name, small_config(name)))


class _IgnoresTemperature(RidgeStrategy):
    name = "broken-logits"

    def logits(self, x: Tensor) -> Tensor:
        return self.raw_scores(x)


class _LosesState(RidgeStrategy):
    name = "broken-tensors"

    def tensors(self) -> dict[str, Tensor]:
        return {**super().tensors(), "weights": super().tensors()["weights"] * 0}


class _SharesState(RidgeStrategy):
    name = "broken-copy"

    def __deepcopy__(self, memo: dict[int, Any]) -> RidgeStrategy:
        return self  # a "copy" that is the original: a failed learn would leak into it


@pytest.mark.parametrize(
    ("cls", "check"),
    [
        (_IgnoresTemperature, check_incremental_fit),
        (_LosesState, check_tensors_round_trip),
        (_SharesState, check_deepcopy_isolates),
    ],
)
def test_the_contract_catches_a_broken_strategy(cls: type[RidgeStrategy], check: Any) -> None:
    with pytest.raises(AssertionError, match=rf"strategy '{cls.name}' fails {check.__name__}: "):
        check_strategy(lambda: cls(features=128), checks=[check])


def test_ridge_learns_around_its_factor_as_if_it_factored_every_time(monkeypatch) -> None:
    """Small learns fold their rows in beside G and solve around the last factorisation
    (Woodbury), and held-out scores reuse the features of the rows scored last time: the same
    head, statistics and scores as factoring G again at every learn and scoring from scratch."""
    import torch

    from agent_il.strategies import ridge

    gen = torch.Generator().manual_seed(0)

    def rows(n: int) -> Tensor:
        return torch.nn.functional.normalize(torch.randn(n, 24, generator=gen), dim=1)

    first, small = rows(300), [rows(12) for _ in range(6)]
    y0 = torch.randint(0, 4, (300,), generator=gen)
    heads = []
    for low_rank in (ridge._LOW_RANK, 0):  # 0: every learn factors G again
        monkeypatch.setattr(ridge, "_LOW_RANK", low_rank)
        head = RidgeStrategy(features=64)
        head.fit(first, y0, 4, None)
        for t, x in enumerate(small):
            head.fit(x, torch.full((12,), 4 + t), 5 + t, None)
        heads.append(head)
    around, refactored = heads
    assert len(around._signs) == 72 and not len(refactored._signs)
    assert torch.allclose(around.weights, refactored.weights, atol=1e-6)
    assert around.temperature == refactored.temperature
    for key, value in around.statistics().items():
        assert torch.allclose(value, refactored.statistics()[key], atol=1e-9), key
    held = torch.cat(small)
    assert torch.allclose(around.recurring_scores(held[:36]), around.raw_scores(held[:36]))
    assert torch.allclose(around.recurring_scores(held), around.raw_scores(held))  # the first 36 reused
    assert torch.allclose(around.recurring_scores(held[12:]), around.raw_scores(held[12:]))  # not a prefix


def test_ridge_features_are_drawn_by_numpy_and_heads_drawn_by_torch_still_load() -> None:
    from agent_il.strategies.heads import ridge_features

    drawn, _ = ridge_features(0, 8, 16, 0.3)
    legacy = torch.randn(8, 16, generator=torch.Generator().manual_seed(0)).numpy()  # heads before numpy drew
    assert not np.array_equal(drawn, legacy)
    assert np.array_equal(ridge_features(0, 8, 16, 0.3, drawn.reshape(-1)[:64])[0], drawn)
    assert np.array_equal(ridge_features(0, 8, 16, 0.3, legacy.reshape(-1)[:64])[0], legacy)
    with pytest.raises(ValueError, match="not the ones that made the head"):
        ridge_features(0, 8, 16, 0.3, np.ones(64, dtype=np.float32))


def test_the_numpy_ridge_head_scores_as_the_strategy_does() -> None:
    from agent_il.strategies.heads import RidgeHead, head_of, load_head

    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(120, 24, generator=gen), torch.arange(120) % 6
    strategy = strategies.make("ridge", {"features": 64})
    strategy.fit(x, y, 6, None)
    head = head_of(strategy)
    assert isinstance(head, RidgeHead) and head.n_classes == 6 and head.temperature == strategy.temperature
    probe = torch.randn(10, 24, generator=gen)
    assert np.allclose(head.raw_scores(probe.numpy()), strategy.raw_scores(probe).numpy(), atol=1e-4)
    stored = {k: v.numpy() for k, v in strategy.tensors().items()}
    assert np.array_equal(
        load_head("ridge", strategy.config(), stored).raw_scores(probe.numpy()), head.raw_scores(probe.numpy())
    )
