"""Exact closed-form head: ridge regression on random features (RanPAC-style).

Features ``h(x) = [x * sqrt(D/d), relu(x W + b)]`` with a fixed random ``W`` (d x D) and ``b``.
Only sufficient statistics are kept, ``G = H^T S H`` and ``C = H^T S Y`` over every example ever
learned (``S``: per-example weights that balance classes of different sizes), so the head after
any sequence of learns equals the head fitted on all the data at once: nothing is forgotten and
no replay is needed. ``lambda`` barely matters in 1e-3..10 with thousands of examples (measured
on a split of the training data), so it is fixed and a learn costs one Cholesky solve.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from agent_il.strategies.base import Revision, Strategy
from agent_il.strategies.heads import RIDGE_SCORE_TEMPERATURE, ridge_features

_TEMPERATURES = torch.logspace(-3, 1, 41, dtype=torch.float64)
REFERENCE_COUNT = 100.0  # a class with this many examples in a learn gets weight 1
_CALIBRATION_ROWS = 500  # enough for one temperature; keeps the solve small
_LOW_RANK = 256  # rows folded into G before it is factored again (each costs a solve, K grows)
_PROBE = 64  # values of the random projection a generation keeps to check it is drawn alike
_MEMO_ROWS = 8192  # feature rows of recurring inputs kept (10 KB each at 2,432 features)


def balance_weights(counts: Tensor) -> Tensor:
    """Each example's weight in ``G`` and ``C`` from its class's size in its learn: classes of
    different sizes weigh alike."""
    return (REFERENCE_COUNT / counts.double().clamp_min(1)).sqrt()


def balance_weight(count: int) -> float:
    """One example's weight in a class of ``count`` (the same float64 value as :func:`balance_weights`)."""
    return math.sqrt(REFERENCE_COUNT / max(count, 1))


class RidgeStrategy(Strategy):
    name: ClassVar[str] = "ridge"
    exact_edits: ClassVar[bool] = True
    # The temperature is refitted at every learn on that learn's examples alone (one class: any
    # temperature fits), so rejection reads the raw scores at the one CLINC150 fits overall.
    score_temperature: ClassVar[float] = RIDGE_SCORE_TEMPERATURE

    def __init__(self, *, features: int = 2048, ridge_lambda: float = 1.0, bias_scale: float = 0.3, seed: int = 0):
        self.features, self.ridge_lambda, self.bias_scale, self.seed = features, ridge_lambda, bias_scale, seed
        self.projection: Tensor | None = None  # d x features
        self.bias: Tensor | None = None  # features
        self.gram: Tensor | None = None  # (d + features) squared, float64, as last factored (see _gram)
        self.cross: Tensor | None = None  # (d + features) x classes, float64
        self.weights: Tensor | None = None  # (d + features) x classes, float32 (solved)
        self._temperature = 1.0
        self._factor: Tensor | None = None
        self._base: Tensor | None = None  # A0^-1 C, A0 = G + lambda I as last factored
        self._memo: tuple[Tensor, Tensor] | None = None  # inputs and features of recurring_scores
        self._last_fit: tuple[Tensor, Tensor] | None = None  # the last fit's inputs and L^-1 h^T
        self._forget_rows()

    def config(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "ridge_lambda": self.ridge_lambda,
            "bias_scale": self.bias_scale,
            "seed": self.seed,
        }

    @property
    def n_classes(self) -> int:
        return 0 if self.weights is None else self.weights.shape[1]

    @property
    def temperature(self) -> float:
        return self._temperature

    def _features(self, x: Tensor) -> Tensor:
        assert self.projection is not None and self.bias is not None
        x = x.float()
        return torch.cat([x * math.sqrt(self.features / x.shape[1]), torch.relu(x @ self.projection + self.bias)], 1)

    def _draw(self, dim: int) -> None:
        """The random features: drawn from the seed, so a generation need not store them."""
        self._draw_as(dim, None)

    def _draw_as(self, dim: int, probe: Tensor | None) -> None:
        """The features of the seed, as the head whose ``probe`` is given drew them (see
        :func:`ridge_features`); raises ValueError if no draw matches."""
        self._memo = None
        projection, bias = ridge_features(
            self.seed, dim, self.features, self.bias_scale, None if probe is None else probe.numpy()
        )
        self.projection, self.bias = torch.from_numpy(projection.copy()), torch.from_numpy(bias.copy())

    def _start(self, dim: int) -> None:
        if self.projection is None:
            self._draw(dim)
        if self.gram is None:
            if self.weights is not None:
                raise RuntimeError("load_statistics() first: the head was loaded without them")
            width = dim + self.features
            self.gram = torch.zeros(width, width, dtype=torch.float64)
            self.cross = torch.zeros(width, self.n_classes, dtype=torch.float64)

    def fit(self, x: Tensor, y: Tensor, n_classes: int, replay: tuple[Tensor, Tensor] | None) -> None:
        self._start(x.shape[1])
        assert self.cross is not None
        if n_classes > self.cross.shape[1]:  # new classes: empty columns (A0^-1 0 = 0)
            self.cross = _widened(self.cross, n_classes)
            self._base = None if self._base is None else _widened(self._base, n_classes)
        weight = balance_weights(torch.bincount(y, minlength=n_classes))[y].double()
        h = self._features(x).double()
        half = self._around_factor(h, weight)
        a = None if half is None else _back(half, self._factor)
        self._last_fit = None if half is None else (x.float(), half)  # calibration scores them again
        self._fold(h, weight, a)
        for m, v in ((self.cross, h.T), (self._base, a)):
            if m is not None and v is not None:
                m.index_add_(1, y, v * weight)
        self._solve(h, weight, y, half)

    def _around_factor(self, h: Tensor, weight: Tensor) -> Tensor | None:
        """``L^-1 h^T`` of rows about to change (``L L^T = A0``, G + lambda I as last factored;
        :func:`_back` finishes ``A0^-1 h^T``), while the factor can take them as low-rank rows;
        None once too many rows have been folded in since it was factored (it is dropped then,
        and factored again when next needed)."""
        if self._factor is None:
            return None
        if len(self._signs) + int((weight != 0).sum()) > _LOW_RANK:
            self.gram = self._gram()
            self._factor = self._base = None
            self._forget_rows()
            return None
        return torch.linalg.solve_triangular(self._factor, h.T, upper=False)

    def _fold(self, h: Tensor, weight: Tensor, a: Tensor | None) -> None:
        """Add ``weight`` times each feature row's outer product to G (a negative weight takes it
        out). While the factor is kept (``a``: the rows solved by it, from :meth:`_around_factor`),
        the rows join the low-rank part ``U^T S U`` kept beside G as it was factored and solved
        around the factor (Woodbury): a learn or an edit then costs no factorisation, no solve
        of every column and no pass over G (see :meth:`_gram`)."""
        assert self.gram is not None
        keep = weight != 0
        h, weight = h[keep], weight[keep]
        if not len(weight):
            return
        if a is None:
            # Rounding may leave G a hair asymmetric; only its lower triangle is ever read (the
            # Cholesky factorisation reads that one, and it is what is saved), so reloads are exact.
            self.gram = torch.addmm(self.gram, (h * weight[:, None]).T, h)  # a new G: copies share the old one
            return
        scale = weight.abs().sqrt()
        first = not len(self._signs)
        u, z = h * scale[:, None], a[:, keep] * scale
        self._rows = u if first else torch.cat([self._rows, u])
        self._z = z if first else torch.cat([self._z, z], 1)
        self._signs = weight.sign() if first else torch.cat([self._signs, weight.sign()])
        self._k_inv = None

    def _solve(self, h: Tensor, weight: Tensor, y: Tensor, half: Tensor | None = None) -> None:
        """Solve for the weights; the temperature is fitted on feature rows ``h`` (labels ``y``;
        ``half``: their ``L^-1 h^T`` if the caller has it)."""
        assert self.cross is not None
        self.factor()  # also solves every column (``_base``) when it factors
        assert self._base is not None
        solved = self._base
        low = self._woodbury()
        if low is not None:
            z, k_inv = low
            solved = solved - z @ (k_inv @ (z.T @ self.cross))
        self.weights = solved.float().contiguous()  # row-major, as it will be when reloaded
        self._temperature = self._choose_temperature(h, weight, y, solved, half) if len(y) else 1.0

    def revise(self, order: list[int | None], change: Revision, replay: tuple[Tensor, Tensor] | None) -> None:
        """Exact: the changed rows' old terms out, their new terms in, columns remapped, solved
        again; the temperature refitted on ``change.recent`` (the newest learn as it is now)."""
        self._start(change.x.shape[1])
        assert self.cross is not None
        self._last_fit = None
        width = self.cross.shape[0]
        h = self._features(change.x).double() if len(change.x) else torch.zeros(0, width, dtype=torch.float64)
        w_old, w_new = change.w_old.double(), change.w_new.double()
        half = self._around_factor(h, w_new - w_old)
        a = None if half is None else _back(half, self._factor)
        self._fold(h, w_new - w_old, a)
        self.cross = self._moved(self.cross, h.T, change, w_old, w_new, order)
        if self._base is not None and a is not None:  # both or neither: see _around_factor
            self._base = self._moved(self._base, a, change, w_old, w_new, order)
        x, y, w = change.recent
        self._solve(self._features(x).double(), w.double(), y)

    @staticmethod
    def _moved(m: Tensor, v: Tensor, change: Revision, w_old: Tensor, w_new: Tensor, order: list[int | None]) -> Tensor:
        """Columns ``m`` (C, or ``A0^-1 C``) after ``change``; ``v``: its rows' terms (``h^T``, or
        ``A0^-1 h^T``), taken out of their old columns, remapped, put into their new ones."""
        out, into = change.y_old >= 0, change.y_new >= 0
        if bool(out.any()):
            m = m.index_add(1, change.y_old[out], -(v[:, out] * w_old[out]))
        zero = m.new_zeros(m.shape[0])
        m = torch.stack([m[:, j] if j is not None else zero for j in order], 1) if order else m[:, :0]
        if bool(into.any()):
            m.index_add_(1, change.y_new[into], v[:, into] * w_new[into])
        return m

    def factor(self) -> Tensor:
        """Cholesky factor of ``G + lambda I`` as it was last factored (rows folded in since are
        solved around it); factoring also solves every column of C by it (``_base``)."""
        assert self.gram is not None and self.cross is not None, "fit() first"
        if self._factor is None:
            self.gram = self._gram()
            self._forget_rows()
            shifted = self.gram.clone()
            shifted.diagonal().add_(self.ridge_lambda)
            self._factor = torch.linalg.cholesky(shifted)  # lower: reads the lower triangle only
            self._base = _cho_solve(self.cross, self._factor)
        return self._factor

    def _gram(self) -> Tensor:
        """G itself: G as last factored plus the rows folded in since (``U^T S U``)."""
        assert self.gram is not None
        if not len(self._signs):
            return self.gram
        return torch.addmm(self.gram, (self._rows * self._signs[:, None]).T, self._rows)

    def _forget_rows(self) -> None:
        width = 0 if self.gram is None else self.gram.shape[0]
        self._rows = torch.zeros(0, width, dtype=torch.float64)
        self._z = torch.zeros(width, 0, dtype=torch.float64)
        self._signs = torch.zeros(0, dtype=torch.float64)
        self._k_inv: Tensor | None = None
        self._last_fit = None  # its solve was by the factor of then

    def _woodbury(self) -> tuple[Tensor, Tensor] | None:
        """``Z = A0^-1 U^T`` and ``(S + U Z)^-1`` of the rows folded in since the factorisation."""
        if not len(self._signs):
            return None
        if self._k_inv is None:
            self._k_inv = torch.linalg.inv(torch.diag(self._signs) + self._rows @ self._z)
        return self._z, self._k_inv

    def __deepcopy__(self, memo: dict[int, Any]) -> RidgeStrategy:
        """A copy shares G (47 MB at 2,432 features), its factor and the feature memo: each is
        replaced, never changed in place."""
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            setattr(new, key, value if key in ("gram", "_factor", "_memo") else copy.deepcopy(value, memo))
        return new

    @torch.no_grad()
    def _choose_temperature(
        self, h: Tensor, weight: Tensor, y: Tensor, solved: Tensor, half: Tensor | None = None
    ) -> float:
        """Scale the scores so their softmax is a usable confidence: the temperature that
        minimises the (smoothed) log-loss of this learn's examples scored leave-one-out (exact
        for ridge: ``(score - lev * y) / (1 - lev)``), not of scores the fit has already seen."""
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed))[:_CALIBRATION_ROWS]
        h, weight, y = h[keep], weight[keep], y[keep]
        loo = self._left_out(h, weight, y, solved, None if half is None else half[:, keep])
        # Laplace-style smoothing: n examples all scored right do not prove certainty, and without
        # it a separable learn drives the temperature to zero (every confidence a flat 1.00).
        eps = 1.0 / (len(y) + 1)
        nll = [
            torch.nn.functional.cross_entropy(loo / t, y, label_smoothing=eps).item() for t in _TEMPERATURES.tolist()
        ]
        return float(_TEMPERATURES[int(torch.tensor(nll).argmin())])

    def _left_out(
        self, h: Tensor, w: Tensor, y: Tensor, solved: Tensor, half: Tensor | None = None, groups: Tensor | None = None
    ) -> Tensor:
        """Exact scores of fitted feature rows (float64) as if left out of the fit: one at a time,
        ``(score - lev * y) / (1 - lev)``, ``lev = w h^T A^-1 h`` how much the row moved its own
        scores; rows sharing a ``groups`` id together, ``(I - H_SS)^-1 (F_S - H_SS Y_S)`` with
        ``H_SS = h_S A^-1 h_S^T W_S`` the group's block of the hat matrix. ``h_i^T A^-1 h_j`` is
        ``z_i^T z_j - q_i^T K q_j``: ``z = L^-1 h^T`` (``half``, if the caller has it) and the
        Woodbury terms of the rows folded in since the factorisation."""
        z = torch.linalg.solve_triangular(self.factor(), h.T, upper=False) if half is None else half
        low = self._woodbury()
        q = None if low is None else low[0].T @ h.T
        target = torch.nn.functional.one_hot(y, solved.shape[1]).double()
        scores, quad = h @ solved, (z * z).sum(0)
        if low is not None and q is not None:
            quad = quad - (q * (low[1] @ q)).sum(0)
        leverage = w * quad
        out = (scores - leverage[:, None] * target) / (1 - leverage).clamp_min(1e-6)[:, None]
        if groups is None:
            return out
        order = torch.argsort(groups, stable=True)
        for rows in torch.split(order, torch.unique_consecutive(groups[order], return_counts=True)[1].tolist()):
            if len(rows) > 1:  # a group of one keeps the formula above
                block = z[:, rows].T @ z[:, rows]
                if low is not None and q is not None:
                    block = block - q[:, rows].T @ low[1] @ q[:, rows]
                hat = block * w[rows][None, :]
                eye = torch.eye(len(rows), dtype=torch.float64)
                out[rows] = torch.linalg.solve(eye - hat, scores[rows] - hat @ target[rows])
        return out

    @torch.no_grad()
    def leave_one_out(self, x: Tensor, y: Tensor, counts: Tensor, groups: Tensor | None = None) -> Tensor | None:
        if self.gram is None or self.weights is None:
            return None
        last, half = self._last_fit or (None, None)
        if last is None or last.shape != x.shape or not torch.equal(last, x.float()):
            half = None  # not the rows of the last fit (whose solve by the factor is kept)
        h = self._features(x).double()
        weight = balance_weights(counts) * (counts > 0)  # count 0: a row the fit has not seen
        return self._left_out(h, weight.double(), y, self.weights.double(), half, groups)

    @torch.no_grad()
    def raw_scores(self, x: Tensor) -> Tensor:
        assert self.weights is not None, "fit() first"
        return self._features(x) @ self.weights

    @torch.no_grad()
    def recurring_scores(self, x: Tensor) -> Tensor:
        """The feature map costs more than the scores, and every learn scores the held-out slices
        again, as before plus its own slice at the end: the features of the rows of the last
        call are kept (up to ``_MEMO_ROWS``) and reused when ``x`` starts with them."""
        assert self.weights is not None, "fit() first"
        x = x.float()
        if (
            self._memo is not None
            and len(x) >= len(self._memo[0])
            and torch.equal(x[: len(self._memo[0])], self._memo[0])
        ):
            kept = self._memo[1]
            h = torch.cat([kept, self._features(x[len(kept) :])]) if len(x) > len(kept) else kept
        else:
            h = self._features(x)
        self._memo = (x.clone(), h) if len(x) <= _MEMO_ROWS else None
        return h @ self.weights

    def tensors(self) -> dict[str, Tensor]:
        """What a predict needs: the solved weights and temperature (the random features are
        drawn again from the seed; a probe of them checks this torch draws the same ones)."""
        assert self.projection is not None and self.weights is not None
        return {
            "weights": self.weights,
            "temperature": torch.tensor(self._temperature, dtype=torch.float64),
            "projection_probe": self.projection.flatten()[:_PROBE].clone(),
        }

    def statistics(self) -> dict[str, Tensor]:
        assert self.gram is not None and self.cross is not None
        gram = self._gram()
        return {"gram_upper": gram.T[tuple(_upper(gram.shape[0]))], "cross": self.cross}  # G's lower triangle

    @property
    def has_statistics(self) -> bool:
        return self.gram is not None or self.weights is None  # a fresh head needs none

    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.weights = tensors["weights"]
        self._temperature = float(tensors["temperature"])
        dim = self.weights.shape[0] - self.features
        if "projection" in tensors:  # written before generations were lean
            self.projection, self.bias = tensors["projection"], tensors["bias"]
        else:
            self._draw_as(dim, tensors["projection_probe"])
        self.gram = self.cross = self._factor = self._base = None
        self._forget_rows()
        if "gram_upper" in tensors:
            self.load_statistics(tensors)

    def load_statistics(self, tensors: dict[str, Tensor]) -> None:
        upper, width = tensors["gram_upper"], tensors["cross"].shape[0]
        rows, cols = _upper(width)
        self.gram = torch.zeros(width, width, dtype=upper.dtype)
        self.gram[rows, cols] = upper
        self.gram[cols, rows] = upper
        self.cross = tensors["cross"]
        self._factor = self._base = None
        self._forget_rows()


def _widened(m: Tensor, columns: int) -> Tensor:
    return torch.cat([m, m.new_zeros(m.shape[0], columns - m.shape[1])], dim=1)


def _cho_solve(b: Tensor, factor: Tensor) -> Tensor:
    """``(L L^T)^-1 b``: two triangular solves, 3x faster here than ``torch.cholesky_solve``."""
    return _back(torch.linalg.solve_triangular(factor, b, upper=False), factor)


def _back(half: Tensor, factor: Tensor | None) -> Tensor:
    """``L^-T half``: the second half of :func:`_cho_solve`."""
    assert factor is not None
    return torch.linalg.solve_triangular(factor.T, half, upper=True)


@functools.lru_cache(maxsize=2)
def _upper(width: int) -> Tensor:
    return torch.triu_indices(width, width)
