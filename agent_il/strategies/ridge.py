"""Exact closed-form head: ridge regression on random features (RanPAC-style).

Features ``h(x) = [x * sqrt(D/d), relu(x W + b)]`` with a fixed random ``W`` (d x D) and ``b``.
Only sufficient statistics are kept, ``G = H^T S H`` and ``C = H^T S Y`` over every example ever
learned (``S``: per-example weights that balance classes of different sizes), so the head after
any sequence of learns equals the head fitted on all the data at once: nothing is forgotten and
no replay is needed. ``lambda`` barely matters in 1e-3..10 with thousands of examples (measured
on a split of the training data), so it is fixed and a learn costs one Cholesky solve.
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from agent_il.strategies.base import Strategy

_TEMPERATURES = torch.logspace(-3, 1, 41, dtype=torch.float64)
REFERENCE_COUNT = 100.0  # a class with this many examples in a learn gets weight 1
_CALIBRATION_ROWS = 500  # enough for one temperature; keeps the solve small


def balance_weights(counts: Tensor) -> Tensor:
    """Each example's weight in ``G`` and ``C`` from its class's size in its learn: classes of
    different sizes weigh alike."""
    return (REFERENCE_COUNT / counts.double().clamp_min(1)).sqrt()


class RidgeStrategy(Strategy):
    name: ClassVar[str] = "ridge"
    # The temperature is refitted at every learn on that learn's examples alone (one class: any
    # temperature fits), so rejection reads the raw scores at the one CLINC150 fits overall.
    score_temperature: ClassVar[float] = 0.05

    def __init__(self, *, features: int = 2048, ridge_lambda: float = 1.0, bias_scale: float = 0.3, seed: int = 0):
        self.features, self.ridge_lambda, self.bias_scale, self.seed = features, ridge_lambda, bias_scale, seed
        self.projection: Tensor | None = None  # d x features
        self.bias: Tensor | None = None  # features
        self.gram: Tensor | None = None  # (d + features) squared, float64
        self.cross: Tensor | None = None  # (d + features) x classes, float64
        self.weights: Tensor | None = None  # (d + features) x classes, float32 (solved)
        self._temperature = 1.0
        self._factor: Tensor | None = None

    def config(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "ridge_lambda": self.ridge_lambda,
            "bias_scale": self.bias_scale,
            "seed": self.seed,
        }

    @property
    def n_classes(self) -> int:
        return 0 if self.cross is None else self.cross.shape[1]

    @property
    def temperature(self) -> float:
        return self._temperature

    def _features(self, x: Tensor) -> Tensor:
        assert self.projection is not None and self.bias is not None
        x = x.float()
        return torch.cat([x * math.sqrt(self.features / x.shape[1]), torch.relu(x @ self.projection + self.bias)], 1)

    def fit(self, x: Tensor, y: Tensor, n_classes: int, replay: tuple[Tensor, Tensor] | None) -> None:
        if self.projection is None:
            gen = torch.Generator().manual_seed(self.seed)
            self.projection = torch.randn(x.shape[1], self.features, generator=gen)
            self.bias = self.bias_scale * torch.randn(self.features, generator=gen)
            width = x.shape[1] + self.features
            self.gram = torch.zeros(width, width, dtype=torch.float64)
            self.cross = torch.zeros(width, 0, dtype=torch.float64)
        assert self.gram is not None and self.cross is not None
        if n_classes > self.cross.shape[1]:
            pad = torch.zeros(self.cross.shape[0], n_classes - self.cross.shape[1], dtype=torch.float64)
            self.cross = torch.cat([self.cross, pad], dim=1)
        weight = balance_weights(torch.bincount(y, minlength=n_classes))[y]
        h = self._features(x).double()
        # Rounding may leave G a hair asymmetric; only its lower triangle is ever read (the
        # Cholesky factorisation reads that one, and it is what is saved), so reloads are exact.
        self.gram.addmm_((h * weight[:, None]).T, h)
        self.cross += (h * weight[:, None]).T @ torch.nn.functional.one_hot(y, n_classes).double()
        self._factor = None
        solved = torch.cholesky_solve(self.cross, self.factor())
        self.weights = solved.float().contiguous()  # row-major, as it will be when reloaded
        self._temperature = self._choose_temperature(h, weight, y, solved)

    def factor(self) -> Tensor:
        """Cholesky factor of ``G + lambda I``, kept until the next fit: the leave-one-out scores
        of calibration reuse it instead of factoring the Gram matrix again."""
        assert self.gram is not None, "fit() first"
        if self._factor is None:
            shifted = self.gram.clone()
            shifted.diagonal().add_(self.ridge_lambda)
            self._factor = torch.linalg.cholesky(shifted)  # lower: reads the lower triangle only
        return self._factor

    def leverage(self, h: Tensor, weight: Tensor) -> Tensor:
        """``w h^T (G + lambda I)^-1 h`` of each feature row ``h``: how much its own example moved
        its scores, for exact leave-one-out scores. One triangular solve: ``|L^-1 h|^2``."""
        z = torch.linalg.solve_triangular(self.factor(), h.double().T, upper=False)
        return weight.double() * (z * z).sum(0)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_factor": None}  # a copy refits before it needs one

    @torch.no_grad()
    def _choose_temperature(self, h: Tensor, weight: Tensor, y: Tensor, solved: Tensor) -> float:
        """Scale the scores so their softmax is a usable confidence: the temperature that
        minimises the (smoothed) log-loss of this learn's examples scored leave-one-out (exact
        for ridge: ``(score - lev * y) / (1 - lev)``), not of scores the fit has already seen."""
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed))[:_CALIBRATION_ROWS]
        h, weight, y = h[keep], weight[keep], y[keep]
        loo = self._left_out(h, weight, y, solved)
        # Laplace-style smoothing: n examples all scored right do not prove certainty, and without
        # it a separable learn drives the temperature to zero (every confidence a flat 1.00).
        eps = 1.0 / (len(y) + 1)
        nll = [
            torch.nn.functional.cross_entropy(loo / t, y, label_smoothing=eps).item() for t in _TEMPERATURES.tolist()
        ]
        return float(_TEMPERATURES[int(torch.tensor(nll).argmin())])

    def _left_out(self, h: Tensor, weight: Tensor, y: Tensor, solved: Tensor) -> Tensor:
        """Exact leave-one-out scores of fitted feature rows: ``(score - lev * y) / (1 - lev)``."""
        leverage = self.leverage(h, weight)
        target = torch.nn.functional.one_hot(y, solved.shape[1]).double()
        return (h @ solved - leverage[:, None] * target) / (1 - leverage).clamp_min(1e-6)[:, None]

    @torch.no_grad()
    def leave_one_out(self, x: Tensor, y: Tensor, counts: Tensor) -> Tensor | None:
        if self.gram is None or self.weights is None:
            return None
        return self._left_out(self._features(x).double(), balance_weights(counts), y, self.weights.double())

    @torch.no_grad()
    def raw_scores(self, x: Tensor) -> Tensor:
        assert self.weights is not None, "fit() first"
        return self._features(x) @ self.weights

    def tensors(self) -> dict[str, Tensor]:
        assert self.projection is not None and self.bias is not None and self.weights is not None
        assert self.gram is not None and self.cross is not None
        return {
            "projection": self.projection,
            "bias": self.bias,
            "gram_upper": self.gram.T[tuple(_upper(self.gram.shape[0]))],  # = the lower triangle of G
            "cross": self.cross,
            "weights": self.weights,
            "temperature": torch.tensor(self._temperature, dtype=torch.float64),
        }

    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.projection, self.bias = tensors["projection"], tensors["bias"]
        upper, width = tensors["gram_upper"], tensors["cross"].shape[0]
        rows, cols = _upper(width)
        self.gram = torch.zeros(width, width, dtype=upper.dtype)
        self.gram[rows, cols] = upper
        self.gram[cols, rows] = upper
        self.cross, self.weights = tensors["cross"], tensors["weights"]
        self._temperature = float(tensors["temperature"])
        self._factor = None


@functools.lru_cache(maxsize=2)
def _upper(width: int) -> Tensor:
    return torch.triu_indices(width, width)
