"""Out-of-scope rejection: in-scope scores, and the threshold that turns one into "unknown".

Scores (higher = more in scope), all computable for every strategy from its logits and the
exemplar memory:

- ``msp``: the largest softmax probability (Hendrycks & Gimpel 2017);
- ``energy``: ``logsumexp`` of the logits (Liu et al. 2020);
- ``prototype``: cosine to the nearest class mean of the exemplars;
- ``mahalanobis``: minus the smallest Mahalanobis distance to a class mean under one shared
  covariance (Lee et al. 2018);
- ``hybrid`` (default): energy plus the *relative* Mahalanobis distance (class distance minus
  the distance to one background Gaussian of all exemplars, Ren et al. 2021), each standardised
  on the calibration rows. The head's energy catches inputs between two known intents, the
  distance catches inputs far from all of them; on CLINC150 the sum beats either alone
  (``benchmarks/oos.py``).

The scores read the head's raw scores on a fixed scale (``Strategy.score_temperature``);
the threshold that turns one into ``unknown`` is fitted in :mod:`agent_il.ood.calibration`.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent_il.state import Calibration
from agent_il.strategies.heads import Head

SHRINK = 0.3  # least covariance shrinkage toward a scaled identity; more with fewer exemplars than dims


@dataclass
class ClassStats:
    """Class means and one shared precision matrix of the exemplar memory, plus a background
    Gaussian of all exemplars. Rows of ``means`` follow the workspace's label order; a class with
    no exemplars has a row of NaN and is skipped. ``scatter`` (``X^T X``) and ``sums`` (per class)
    are the moments it was made from: sums, so :meth:`updated` reads only the rows that change."""

    means: np.ndarray
    counts: np.ndarray  # exemplars per class
    precision: np.ndarray
    background_mean: np.ndarray
    background_precision: np.ndarray
    scatter: np.ndarray
    sums: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, n_classes: int) -> ClassStats:
        """One pass over the rows (``X^T X`` and per-class sums); the rest is per class."""
        scatter, sums = _moments(x, y, n_classes)
        return cls._of(scatter, sums, np.bincount(y, minlength=n_classes))

    def updated(
        self, added: tuple[np.ndarray, np.ndarray], dropped: tuple[np.ndarray, np.ndarray], n_classes: int
    ) -> ClassStats:
        """The statistics with rows ``added`` and ``dropped`` (x, class), over ``n_classes``
        (at least as many as now: new classes come last)."""
        grow = n_classes - len(self.counts)
        scatter, sums = self.scatter.copy(), np.pad(self.sums, ((0, grow), (0, 0)))
        counts = np.pad(self.counts, (0, grow))
        for (x, y), sign in ((added, 1), (dropped, -1)):
            if len(x):
                s, c = _moments(x, y, n_classes)
                scatter += sign * s
                sums += sign * c
                counts += sign * np.bincount(y, minlength=n_classes)
        return ClassStats._of(scatter, sums, counts)

    @classmethod
    def _of(cls, scatter: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> ClassStats:
        n = max(int(counts.sum()), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts[:, None]  # NaN rows: classes without exemplars
        seen = counts > 0
        within = scatter - matmul(sums[seen].T / counts[seen], sums[seen])  # sum of (x - mu_y)(x - mu_y)^T
        background = sums.sum(0) / n
        return cls(
            means=means,
            counts=counts,
            precision=_shrunk_inverse(within / n, int(counts.sum())),
            background_mean=background,
            background_precision=_shrunk_inverse(scatter / n - np.outer(background, background), int(counts.sum())),
            scatter=scatter,
            sums=sums,
        )

    @functools.cached_property
    def known(self) -> np.ndarray:
        """Classes with exemplars."""
        return ~np.isnan(self.means).any(1)

    @functools.cached_property
    def unit_means(self) -> np.ndarray:
        means = self.means[self.known]
        return means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-12)

    @functools.cached_property
    def classes(self) -> _Gaussians:
        return _Gaussians(self.means[self.known], self.precision)

    @functools.cached_property
    def background(self) -> _Gaussians:
        return _Gaussians(self.background_mean[None, :], self.background_precision)


def _moments(x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``X^T X`` and the per-class sums of the rows, in float64."""
    dim = x.shape[1]
    scatter = np.zeros((dim, dim))
    class_sums = np.zeros((n_classes, dim))
    labels = np.asarray(y, dtype=np.int64)
    for s in range(0, len(x), 16384):  # float64 a block at a time, not a float64 copy of all rows
        block = np.asarray(x[s : s + 16384], dtype=np.float64)
        scatter += matmul(block.T, block)
        np.add.at(class_sums, labels[s : s + 16384], block)
    return scatter, class_sums


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``, on torch's threads when torch is loaded (the torch encoder and learning): numpy's
    BLAS keeps a thread pool of its own, and waking it during a predict makes it fight the
    encoder's threads for the same cores (measured on 2 cores: +2-4 ms on every single query).
    Without torch (the ONNX backend) numpy does it: nothing loads torch for a product; nor while
    another thread is still importing it (a learn beside a predict in a server)."""
    torch = sys.modules.get("torch")
    if torch is None or getattr(getattr(torch, "__spec__", None), "_initializing", False):
        return a @ b
    return (torch.from_numpy(a) @ torch.from_numpy(b)).numpy()


def top_k(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` largest values of each row and their columns, largest first."""
    if n < values.shape[1]:
        cols = np.argpartition(-values, n - 1, axis=1)[:, :n]
    else:
        cols = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    order = np.argsort(-np.take_along_axis(values, cols, 1), axis=1, kind="stable")
    cols = np.take_along_axis(cols, order, 1)
    return np.take_along_axis(values, cols, 1), cols


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def _shrunk_inverse(cov: np.ndarray, n: int) -> np.ndarray:
    """Inverse of ``cov`` shrunk toward a scaled identity, the more so the fewer rows (``n``) it
    was estimated from: from 200 exemplars, 384 dimensions are mostly unseen directions, and an
    unshrunk precision would call every new input far away."""
    dim = cov.shape[0]
    scale = max(float(np.trace(cov)) / dim, 1e-6)
    shrink = _shrink(dim, n)
    return _spd_inverse((1 - shrink) * cov + shrink * scale * np.eye(dim))


def _shrink(dim: int, n: int) -> float:
    return min(0.95, max(SHRINK, dim / max(n, 1)))


def _spd_inverse(a: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix, from its Cholesky factor (on torch's
    threads when torch is loaded, as :func:`matmul`: half the time of a general inverse)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return np.linalg.inv(a)
    t = torch.from_numpy(a)
    return torch.cholesky_inverse(torch.linalg.cholesky(t)).numpy()


class _Gaussians:
    """Squared Mahalanobis distances to ``means`` under one ``precision``, with the parts that do
    not depend on the input computed once: a predict then costs ``d^2 + d C``, not ``C d^2``.
    The products with the input run in float32 (half the time of float64 on a learn's 2,000
    calibration rows; the distances, in the hundreds, move by about 1e-4), the sums in float64."""

    def __init__(self, means: np.ndarray, precision: np.ndarray) -> None:
        projected = matmul(precision, means.T)  # d x C
        self.means, self.precision64 = means, precision
        self.offsets = (means.T * projected).sum(0)  # mu_c^T P mu_c
        self.precision = precision.astype(np.float32)
        self.projected = projected.astype(np.float32)

    def distances(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        quadratic = (matmul(x, self.precision) * x).sum(1, dtype=np.float64)
        return quadratic[:, None] - 2 * matmul(x, self.projected).astype(np.float64) + self.offsets[None, :]


def components(
    logits: Any,
    x: np.ndarray,
    stats: ClassStats | None,
    own: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every raw score for each row (``logits``: numpy, or a CPU torch tensor); the distance
    scores need ``stats`` (exemplars). ``own[i]`` is the class whose exemplar row ``i`` is (-1:
    none): it is measured as if it were not among the exemplars, and with ``groups``, every row
    as if the exemplar rows of its group (all of one class) were not."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(1)
    total = np.exp(logits - top[:, None]).sum(1)
    out = {"msp": 1.0 / total, "energy": top + np.log(total)}
    if stats is not None:
        known = stats.known
        if known.any():
            x = np.asarray(x, dtype=np.float32)  # the products in float32, as in _Gaussians
            cos = matmul(x, stats.unit_means.T.astype(np.float32)).astype(np.float64)
            dist = stats.classes.distances(x)
            background = stats.background.distances(x)[:, 0]
            if own is not None:
                _leave_out(stats, x, own, np.arange(len(x)) if groups is None else groups, cos, dist, background)
            out["prototype"] = cos.max(1)
            out["mahalanobis"] = -dist.min(1)
            out["relative"] = -(dist - background[:, None]).min(1)
    return out


def _leave_out(
    stats: ClassStats,
    x: np.ndarray,
    own: np.ndarray,
    groups: np.ndarray,
    cos: np.ndarray,
    dist: np.ndarray,
    background: np.ndarray,
) -> None:
    """:func:`components`' ``cos``, ``dist`` and ``background`` of the rows, in place, as if their
    group's exemplar rows were not among the exemplars: the group's class mean without them, and
    both shrunk covariances without their scatter (a low-rank Woodbury downdate of the precision,
    up to the 1/n change of its scale), the distance to its own class read at a query's scale
    (:func:`_query_scale`). Without this, a workspace whose rows are all exemplars
    (a few examples an intent) calibrates on rows that lie in the span of the very covariance that
    measures them, where the precision is small: their distances run short of a new query's, and
    the threshold rejects far more than its keep rate."""
    column = np.cumsum(stats.known) - 1  # class index -> column among the known ones
    total = int(stats.counts.sum())
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    ex = own >= 0
    rows = np.flatnonzero(ex & (sizes[inverse] == 1) & (stats.counts[np.maximum(own, 0)] > 1))
    if len(rows):  # a group of one row, the most common: all at once, by Sherman-Morrison
        c, n = own[rows], stats.counts[own[rows]][:, None].astype(np.float64)
        mine = x[rows].astype(np.float64)
        mean = (n * stats.means[c] - mine) / (n - 1)  # the class mean without the row
        cos[rows, column[c]] = (mine * mean).sum(1) / np.linalg.norm(mean, axis=1).clip(1e-12)
        dist[rows] = _left_out(stats.classes, dist[rows], mine, mine - stats.means[c], n[:, 0], column[c], total)
        background[rows] = _left_out(
            stats.background,
            background[rows, None],
            mine,
            mine - stats.background_mean,
            np.full(len(rows), float(total)),
            np.zeros(len(rows), dtype=np.int64),
            total,
        )[:, 0]
    for g in np.flatnonzero(sizes > 1):
        rows = np.flatnonzero(inverse == g)
        gone = x[rows[ex[rows]]].astype(np.float64)
        if not len(gone):
            continue
        c = int(own[rows[ex[rows]][0]])
        if stats.counts[c] <= len(gone):
            continue
        mine = x[rows].astype(np.float64)
        mean, dist[rows] = _group_out(
            stats.classes, dist[rows], mine, gone, stats.means[c], int(stats.counts[c]), column[c], total
        )
        cos[rows, column[c]] = mine @ mean / max(float(np.linalg.norm(mean)), 1e-12)
        background[rows] = _group_out(
            stats.background, background[rows, None], mine, gone, stats.background_mean, total, 0, total
        )[1][:, 0]


def _group_out(
    gaussians: _Gaussians,
    seen: np.ndarray,
    x: np.ndarray,
    gone: np.ndarray,
    mean: np.ndarray,
    size: int,
    own: int,
    total: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The mean of column ``own`` (``mean``, of ``size`` rows) without the rows ``gone``, and the
    squared distances of ``x`` to every mean (``seen``: with ``gone`` among the ``total``
    exemplars) as if ``gone`` were not. Their group's scatter loses ``R^T R + s s^T / (size - k)``
    (``R``: their residuals, ``s`` their sum), so the covariance loses ``a D^T D`` with ``D = [R;
    s / sqrt(size - k)]``, and by Woodbury ``e^T P' e = e^T P e + a u^T (I - a D P D^T)^-1 u``,
    ``u = D P e``: a rank-``k + 1`` correction of the distances already computed."""
    k = len(gone)
    residual = gone - mean
    s = residual.sum(0)
    down = np.vstack([residual, s / np.sqrt(size - k)])
    a = (1.0 - _shrink(len(mean), total)) / total
    pd = matmul(down, gaussians.precision64)  # D P, a row each
    inner = np.linalg.inv(np.eye(k + 1) - a * matmul(pd, down.T))
    moved = mean - s / (size - k)
    at_means = matmul(pd, gaussians.means.T)  # D P mu_j
    at_means[:, own] = pd @ moved
    u = matmul(x, pd.T)[:, :, None] - at_means[None]  # rows x (k + 1) x means
    out = seen + a * np.einsum("rpc,pq,rqc->rc", u, inner, u)
    e = x - moved
    out[:, own] = ((e @ gaussians.precision64) * e).sum(1) + (out[:, own] - seen[:, own])
    out[:, own] *= _query_scale(size, k)
    return moved, out


def _left_out(
    gaussians: _Gaussians,
    seen: np.ndarray,
    x: np.ndarray,
    residual: np.ndarray,
    size: np.ndarray,
    own: np.ndarray,
    total: int,
) -> np.ndarray:
    """Squared distances of exemplar rows ``x`` to every mean of ``gaussians`` as if each row had
    not been among the ``total`` exemplars (``seen``: the distances with it among them): its own
    mean (column ``own``; ``residual``: the row minus that mean, of a group of ``size`` rows)
    without it, and the shrunk covariance without its outer product (why: :func:`_leave_out`).
    With ``P`` the precision and the covariance losing ``a r r^T``, Sherman-Morrison gives
    ``e^T P' e = e^T P e + a (e^T P r)^2 / (1 - a r^T P r)``."""
    shift = size / (size - 1)  # the group's scatter loses shift * r r^T; its mean moves by r / (size - 1)
    a = (1.0 - _shrink(len(residual.T), total)) * shift / total  # the covariance is scatter / total, shrunk
    pr = matmul(residual, gaussians.precision64)  # (P r)^T, a row each
    q = (pr * residual).sum(1)
    gain = a / (1.0 - a * q)
    cross = (pr * x).sum(1)[:, None] - matmul(pr, gaussians.means.T)  # e_j^T P r for every mean j
    out = seen + gain[:, None] * cross**2
    rows = np.arange(len(x))
    out[rows, own] = shift**2 * q / (1.0 - a * q) * _query_scale(size, 1)  # e = shift * r, to the mean without it
    return out


def _query_scale(size: int | np.ndarray, k: int) -> float | np.ndarray:
    """What a row's squared distance to the mean of the ``size - k`` rows left of its group is
    scaled by to read as a new query's to the mean of all ``size``: a point's expected squared
    distance to the mean of ``m`` rows of its Gaussian is ``tr(P Sigma) (1 + 1 / m)``. Unscaled, a
    class of five examples calibrates on distances 7% longer than its queries meet, and the
    threshold keeps about 2 points more than its keep rate."""
    return (1 + 1 / size) / (1 + 1 / (size - k))


def standardiser(comps: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Mean and std of each raw score on the calibration rows, to put them on one scale."""
    return {k: [float(v.mean()), float(v.std()) or 1.0] for k, v in comps.items()}


def score(name: str, comps: dict[str, np.ndarray], norm: dict[str, list[float]]) -> np.ndarray:
    """The in-scope score ``name``; falls back to energy where the exemplar statistics are missing."""
    if name == "hybrid":
        if "relative" not in comps or "relative" not in norm or "energy" not in norm:
            return comps["energy"]
        (me, se), (mr, sr) = norm["energy"], norm["relative"]
        return (comps["energy"] - me) / se + (comps["relative"] - mr) / sr
    return comps[name] if name in comps else comps["energy"]


def head_logits(head: Head | Any, raw: Any) -> Any:
    """``raw`` scores of a head (or strategy) on the fixed scale the scores above read."""
    return raw / head.score_temperature


def rejections(
    name: str, cal: Calibration | None, logits: Any, x: np.ndarray, stats: ClassStats | None
) -> tuple[np.ndarray | None, np.ndarray]:
    """The in-scope score ``name`` of each row and whether it is kept under ``cal`` (workspaces
    from before calibration existed keep everything); ``logits`` from :func:`head_logits`."""
    if cal is None:
        return None, np.ones(len(x), dtype=bool)
    scores = score(name, components(logits, x, stats), cal.norm)
    if cal.threshold is None:
        return scores, np.ones(len(x), dtype=bool)
    return scores, scores >= cal.threshold
