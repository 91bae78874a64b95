"""Which examples of a class to keep as exemplars. Each policy returns indices in keep-order,
so a smaller budget later keeps a prefix of the same list."""

from __future__ import annotations

import numpy as np

from agent_il.config import SELECTIONS
from agent_il.errors import InvalidInputError


def herding(x: np.ndarray, m: int) -> np.ndarray:
    """iCaRL herding: greedily pick the example that keeps the running mean closest to the class
    mean, so a few exemplars summarise the whole class."""
    n = x.shape[0]
    m = min(m, n)
    x = x.astype(np.float64)
    target = x.mean(axis=0)
    chosen: list[int] = []
    running = np.zeros_like(target)
    available = np.ones(n, dtype=bool)
    for k in range(1, m + 1):
        candidates = (running[None, :] + x) / k
        dist = np.linalg.norm(candidates - target[None, :], axis=1)
        dist[~available] = np.inf
        best = int(np.argmin(dist))
        chosen.append(best)
        available[best] = False
        running += x[best]
    return np.asarray(chosen, dtype=np.int64)


def select(x: np.ndarray, m: int, policy: str, rng: np.random.Generator) -> np.ndarray:
    if policy == "herding":
        return herding(x, m)
    if policy == "random":
        return rng.permutation(x.shape[0])[: min(m, x.shape[0])]
    raise InvalidInputError(f"unknown selection {policy!r}; choose one of {', '.join(SELECTIONS)}")
