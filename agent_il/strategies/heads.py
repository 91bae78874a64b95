"""The predict-time half of a strategy: a generation's arrays applied to embeddings. The ridge
head is plain numpy, so a predict on the ONNX backend imports no torch; the neural heads run
their strategy (torch) behind the same two calls."""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from agent_il.strategies.base import Strategy

RIDGE_SCORE_TEMPERATURE = 0.05  # see RidgeStrategy.score_temperature


class Head(ABC):
    """Raw scores (n x classes) and the two temperatures: confidence is ``softmax(raw /
    temperature)``; rejection reads ``raw / score_temperature`` (:mod:`agent_il.ood.scores`)."""

    temperature: float
    score_temperature: float

    @abstractmethod
    def raw_scores(self, x: np.ndarray) -> np.ndarray: ...

    @property
    @abstractmethod
    def n_classes(self) -> int: ...


class RidgeHead(Head):
    """``[x * sqrt(F / d), relu(x P + b)] W``: the random features drawn from the seed, the
    weights as solved."""

    score_temperature = RIDGE_SCORE_TEMPERATURE

    def __init__(self, weights: np.ndarray, temperature: float, projection: np.ndarray, bias: np.ndarray) -> None:
        self.weights, self.temperature = np.asarray(weights, dtype=np.float32), temperature
        self.projection, self.bias = projection, bias
        dim = projection.shape[0]
        # The product split in two (no concatenated feature matrix per predict)
        self._direct = np.ascontiguousarray(np.float32(math.sqrt(projection.shape[1] / dim)) * self.weights[:dim])
        self._hidden = np.ascontiguousarray(self.weights[dim:])

    @classmethod
    def of(cls, config: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> RidgeHead:
        features, seed = int(config.get("features", 2048)), int(config.get("seed", 0))
        weights = arrays["weights"]
        if "projection" in arrays:  # written before generations were lean
            projection, bias = np.asarray(arrays["projection"]), np.asarray(arrays["bias"])
        else:
            dim = weights.shape[0] - features
            bias_scale = float(config.get("bias_scale", 0.3))
            projection, bias = ridge_features(seed, dim, features, bias_scale, np.asarray(arrays["projection_probe"]))
        return cls(weights, float(np.asarray(arrays["temperature"]).reshape(-1)[0]), projection, bias)

    @property
    def n_classes(self) -> int:
        return int(self.weights.shape[1])

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return x @ self._direct + np.maximum(x @ self.projection + self.bias, 0) @ self._hidden


class StrategyHead(Head):
    """Any strategy's own ``raw_scores`` (torch), for the rules with no numpy head."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.temperature, self.score_temperature = strategy.temperature, strategy.score_temperature

    @property
    def n_classes(self) -> int:
        return self.strategy.n_classes

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        import torch

        return self.strategy.raw_scores(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()


def load_head(name: str, config: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> Head:
    """The head of a generation (its arrays as storage reads them)."""
    if name == "ridge":
        return RidgeHead.of(config, arrays)
    from agent_il import strategies

    return StrategyHead(strategies.load(name, config, arrays))


def head_of(strategy: Strategy) -> Head:
    """The head a reopened workspace would load for ``strategy``'s current tensors, so a predict
    in the learning process and one in a fresh process agree bit for bit."""
    if strategy.name != "ridge":
        return StrategyHead(strategy)
    arrays = {k: v.detach().cpu().numpy().copy() for k, v in strategy.tensors().items()}
    return RidgeHead.of(strategy.config(), arrays)


def ridge_features(
    seed: int, dim: int, features: int, bias_scale: float, probe: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The random projection and bias a ridge head of this seed uses. Drawn with numpy's legacy
    ``RandomState``, whose streams numpy keeps fixed across versions; heads made before that drew
    with torch, and ``probe`` (the projection's first values, stored with every generation) tells
    which: an unknown probe is an error, not other features."""
    projection, bias = _numpy_draw(seed, dim, features, bias_scale)
    if probe is None or np.array_equal(projection.reshape(-1)[: len(probe)], probe):
        return projection, bias
    projection, bias = _torch_draw(seed, dim, features, bias_scale)
    if np.array_equal(projection.reshape(-1)[: len(probe)], probe):
        return projection, bias
    raise ValueError("the random features drawn from the seed are not the ones that made the head")


@functools.lru_cache(maxsize=4)
def _numpy_draw(seed: int, dim: int, features: int, bias_scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    projection = rng.standard_normal((dim, features)).astype(np.float32)
    bias = (bias_scale * rng.standard_normal(features)).astype(np.float32)
    projection.flags.writeable = bias.flags.writeable = False  # shared by every head of the process
    return projection, bias


@functools.lru_cache(maxsize=2)
def _torch_draw(seed: int, dim: int, features: int, bias_scale: float) -> tuple[np.ndarray, np.ndarray]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    projection = torch.randn(dim, features, generator=gen).numpy()
    bias = (bias_scale * torch.randn(features, generator=gen)).numpy()
    projection.flags.writeable = bias.flags.writeable = False
    return projection, bias
