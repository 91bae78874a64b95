"""Exact closed-form head: ridge regression on random ReLU features (RanPAC-style).

Only sufficient statistics are kept, ``G = H^T H`` and ``C = H^T Y`` over every example ever
learned, so the head after any sequence of learns equals the head trained on all data at once:
nothing is forgotten and no replay is needed. The ridge penalty is chosen by generalised
cross-validation computed from G and C alone, and re-chosen whenever the data seen has doubled
(an eigendecomposition costs ~1 s at 2048 features; a Cholesky solve ~0.1 s).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from agent_il.strategies.base import Strategy

_LAMBDAS = torch.logspace(-4, 6, 41, dtype=torch.float64)
_TEMPERATURES = torch.logspace(-3, 1, 41, dtype=torch.float64)


class RidgeStrategy(Strategy):
    name: ClassVar[str] = "ridge"

    def __init__(self, *, features: int = 2048, seed: int = 0) -> None:
        self.features, self.seed = features, seed
        self.projection: Tensor | None = None  # dim x features, fixed at first fit
        self.gram: Tensor | None = None  # features x features, float64
        self.cross: Tensor | None = None  # features x classes, float64
        self.weights: Tensor | None = None  # features x classes, float32 (solved)
        self.n_seen = 0
        self.lam = 1.0
        self.lam_chosen_at = 0
        self.temperature = 1.0

    def config(self) -> dict[str, Any]:
        return {"features": self.features, "seed": self.seed}

    @property
    def n_classes(self) -> int:
        return 0 if self.cross is None else self.cross.shape[1]

    def _features(self, x: Tensor) -> Tensor:
        assert self.projection is not None
        return torch.relu(x.float() @ self.projection)

    def fit(self, x: Tensor, y: Tensor, n_classes: int, replay: tuple[Tensor, Tensor] | None) -> None:
        if self.projection is None:
            gen = torch.Generator().manual_seed(self.seed)
            self.projection = torch.randn(x.shape[1], self.features, generator=gen)
            self.gram = torch.zeros(self.features, self.features, dtype=torch.float64)
            self.cross = torch.zeros(self.features, 0, dtype=torch.float64)
        assert self.gram is not None and self.cross is not None
        if n_classes > self.cross.shape[1]:
            pad = torch.zeros(self.features, n_classes - self.cross.shape[1], dtype=torch.float64)
            self.cross = torch.cat([self.cross, pad], dim=1)
        h = self._features(x).double()
        self.gram += h.T @ h
        self.cross += h.T @ torch.nn.functional.one_hot(y, n_classes).double()
        self.n_seen += len(x)
        if self.n_seen >= 2 * self.lam_chosen_at:
            self.lam = self._choose_lambda()
            self.lam_chosen_at = self.n_seen
        eye = torch.eye(self.features, dtype=torch.float64)
        chol = torch.linalg.cholesky(self.gram + self.lam * eye)
        self.weights = torch.cholesky_solve(self.cross, chol).float()
        calib_x, calib_y = (x, y) if replay is None else (torch.cat([x, replay[0]]), torch.cat([y, replay[1]]))
        self.temperature = self._choose_temperature(calib_x, calib_y)

    def _choose_lambda(self) -> float:
        """Generalised cross-validation from the sufficient statistics alone."""
        assert self.gram is not None and self.cross is not None
        s, v = torch.linalg.eigh(self.gram)
        s = s.clamp_min(0)
        q2 = ((v.T @ self.cross) ** 2).sum(dim=1)  # per eigen-direction
        n = float(self.n_seen)
        best, best_score = self.lam, float("inf")
        for lam in _LAMBDAS.tolist():
            shrink = 1.0 / (s + lam)
            df = float((s * shrink).sum())
            rss = n - 2 * float((q2 * shrink).sum()) + float((s * q2 * shrink**2).sum())
            if df >= n:
                continue
            score = (rss / n) / (1 - df / n) ** 2
            if score < best_score:
                best, best_score = lam, score
        return best

    @torch.no_grad()
    def _choose_temperature(self, x: Tensor, y: Tensor) -> float:
        """Scale the regression scores so their softmax is a usable confidence (min NLL)."""
        scores = self._raw_scores(x).double()
        nll = [torch.nn.functional.cross_entropy(scores / t, y).item() for t in _TEMPERATURES.tolist()]
        return float(_TEMPERATURES[int(torch.tensor(nll).argmin())])

    def _raw_scores(self, x: Tensor) -> Tensor:
        assert self.weights is not None, "fit() first"
        return self._features(x) @ self.weights

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        return self._raw_scores(x) / self.temperature

    def tensors(self) -> dict[str, Tensor]:
        assert self.projection is not None and self.gram is not None and self.cross is not None
        assert self.weights is not None
        scalars = [self.n_seen, self.lam, self.lam_chosen_at, self.temperature]
        return {
            "projection": self.projection,
            "gram": self.gram,
            "cross": self.cross,
            "weights": self.weights,
            "scalars": torch.tensor(scalars, dtype=torch.float64),
        }

    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.projection, self.gram = tensors["projection"], tensors["gram"]
        self.cross, self.weights = tensors["cross"], tensors["weights"]
        n_seen, lam, lam_at, temperature = tensors["scalars"].tolist()
        self.n_seen, self.lam, self.lam_chosen_at, self.temperature = int(n_seen), lam, int(lam_at), temperature
