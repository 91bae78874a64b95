"""Baselines the benchmark runs beside the strategies, under the same class-incremental protocol:
what a user would reach for instead of a trained head. None is offered by the product; each keeps
everything it has seen (no exemplar budget), so they are upper bounds on what storing costs.

- ``nearest-mean``: cosine to each class's mean embedding (prototypes).
- ``router``: semantic-router's rule: cosine to every stored utterance, the ``TOP_K`` nearest,
  and the route whose hits among them have the highest mean similarity.
- ``logreg``: joint multinomial logistic regression (scikit-learn) on every example seen so far,
  refitted at every task.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from agent_il.strategies.base import Revision, Strategy

TOP_K = 5  # semantic-router's default top_k


class _Stored(Strategy):
    """Keeps every row it is given; scores are computed from all of them."""

    name: ClassVar[str] = "stored"

    def __init__(self) -> None:
        self.x = np.zeros((0, 0), dtype=np.float32)
        self.y = np.zeros(0, dtype=np.int64)
        self._classes = 0

    @property
    def n_classes(self) -> int:
        return self._classes

    def config(self) -> dict[str, Any]:
        return {}

    def fit(self, x: Tensor, y: Tensor, n_classes: int, replay: tuple[Tensor, Tensor] | None) -> None:
        rows = x.numpy().astype(np.float32)
        self.x = rows if not len(self.x) else np.concatenate([self.x, rows])
        self.y = np.concatenate([self.y, y.numpy().astype(np.int64)])
        self._classes = n_classes
        self.refit()

    def refit(self) -> None:
        """Derive the scorer from the stored rows."""

    def revise(self, order: list[int | None], change: Revision, replay: tuple[Tensor, Tensor] | None) -> None:
        raise NotImplementedError("benchmark baselines are not edited")

    def tensors(self) -> dict[str, Tensor]:
        return {"x": torch.from_numpy(self.x), "y": torch.from_numpy(self.y)}

    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.x, self.y = tensors["x"].numpy(), tensors["y"].numpy()
        self._classes = int(self.y.max()) + 1 if len(self.y) else 0
        self.refit()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


class NearestMean(_Stored):
    name = "nearest-mean"

    def refit(self) -> None:
        sums = np.zeros((self.n_classes, self.x.shape[1]))
        np.add.at(sums, self.y, self.x)
        self.means = _unit(sums)

    def raw_scores(self, x: Tensor) -> Tensor:
        return torch.from_numpy(_unit(x.numpy()) @ self.means.T)


class Router(_Stored):
    name = "router"

    def raw_scores(self, x: Tensor) -> Tensor:
        sims = _unit(x.numpy()) @ _unit(self.x).T
        k = min(TOP_K, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        hits = np.take_along_axis(sims, top, 1)
        totals = np.zeros((len(sims), self.n_classes))
        counts = np.zeros((len(sims), self.n_classes))
        rows = np.repeat(np.arange(len(sims)), k)
        np.add.at(totals, (rows, self.y[top].ravel()), hits.ravel())
        np.add.at(counts, (rows, self.y[top].ravel()), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = totals / counts
        return torch.from_numpy(np.where(counts > 0, means, -np.inf))


class LogisticRegression(_Stored):
    name = "logreg"

    def refit(self) -> None:
        from sklearn.linear_model import LogisticRegression as Fit

        present = np.unique(self.y)
        self.classes = present
        self.model = Fit(max_iter=1000, C=10.0).fit(self.x, self.y) if len(present) > 1 else None

    def raw_scores(self, x: Tensor) -> Tensor:
        out = np.full((len(x), self.n_classes), -np.inf)
        if self.model is None:
            out[:, self.classes] = 0.0
        else:
            scores = self.model.decision_function(x.numpy())
            out[:, self.model.classes_] = np.stack([-scores, scores], 1) if scores.ndim == 1 else scores
        return torch.from_numpy(out)


BASELINES: dict[str, type[_Stored]] = {c.name: c for c in (NearestMean, Router, LogisticRegression)}
