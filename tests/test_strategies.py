"""Every registered strategy passes the strategy contract (agent_il.strategies.checks), and the
contract itself catches rules that break it."""

from __future__ import annotations

from typing import Any

import pytest
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
