"""Learning rules, by name. ``make`` builds one from a name and its JSON config."""

from __future__ import annotations

from typing import Any

from agent_il.config import DEFAULT_STRATEGY
from agent_il.errors import InvalidInputError
from agent_il.strategies.base import Strategy
from agent_il.strategies.neural import EWCReplayStrategy, EWCStrategy, NeuralStrategy, ReplayStrategy
from agent_il.strategies.ridge import RidgeStrategy

REGISTRY: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RidgeStrategy, EWCReplayStrategy, ReplayStrategy, EWCStrategy, NeuralStrategy)
}


def make(name: str, config: dict[str, Any] | None = None) -> Strategy:
    cls = REGISTRY.get(name)
    if cls is None:
        raise InvalidInputError(f"unknown strategy {name!r}; choose one of {', '.join(REGISTRY)}")
    try:
        return cls(**(config or {}))
    except TypeError as exc:
        raise InvalidInputError(f"bad options for strategy {name!r}: {exc}") from exc


__all__ = ["DEFAULT_STRATEGY", "REGISTRY", "Strategy", "make"]
