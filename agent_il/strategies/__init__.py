"""Learning rules, by name. ``make`` builds one from a name and its JSON config; a rule's module
(and torch with it) is imported only when one is made, so a predict that needs only the
generation's arrays (:mod:`agent_il.strategies.heads`) never imports it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from agent_il.config import DEFAULT_STRATEGY
from agent_il.errors import InvalidInputError
from agent_il.strategies.base import Strategy

_WHERE = {
    "ridge": "ridge:RidgeStrategy",
    "ewc-replay": "neural:EWCReplayStrategy",
    "replay": "neural:ReplayStrategy",
    "ewc": "neural:EWCStrategy",
    "naive": "neural:NeuralStrategy",
}


class _Registry(Mapping[str, type[Strategy]]):
    """Strategy classes by name, each imported when first looked up."""

    def __getitem__(self, name: str) -> type[Strategy]:
        module, cls = _WHERE[name].split(":")
        return getattr(importlib.import_module(f"agent_il.strategies.{module}"), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)


REGISTRY: Mapping[str, type[Strategy]] = _Registry()


def check_name(name: str) -> str:
    if name not in _WHERE:
        raise InvalidInputError(f"unknown strategy {name!r}; choose one of {', '.join(_WHERE)}")
    return name


def make(name: str, config: dict[str, Any] | None = None) -> Strategy:
    cls = REGISTRY[check_name(name)]
    try:
        return cls(**(config or {}))
    except TypeError as exc:
        raise InvalidInputError(f"bad options for strategy {name!r}: {exc}") from exc


def torch_tensors(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """A generation's arrays (numpy, as storage reads them) as the torch tensors a strategy loads."""
    import numpy as np
    import torch

    return {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}


def load(name: str, config: dict[str, Any], arrays: Mapping[str, Any]) -> Strategy:
    """The strategy ``name`` with a generation's arrays loaded."""
    strategy = make(name, config)
    strategy.load_tensors(torch_tensors(arrays))
    return strategy


__all__ = ["DEFAULT_STRATEGY", "REGISTRY", "Strategy", "load", "make", "torch_tensors"]
