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

The threshold is a quantile of the scores of in-scope rows the head has not fitted: this learn's
examples scored leave-one-out (exact and cheap for the ridge head) and the held-out slices. The
workspace keeps the target keep rate, so every learn recalibrates it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agent_il.errors import InvalidInputError
from agent_il.strategies.base import Strategy

SCORES = ("hybrid", "energy", "msp", "prototype", "mahalanobis")
DEFAULT_SCORE = "hybrid"
DEFAULT_KEEP = 0.95
SHRINK = 0.3  # least covariance shrinkage toward a scaled identity; more with fewer exemplars than dims
CALIBRATION_ROWS = 2000  # in-scope rows a learn calibrates on (random subset beyond that)
# A learn with this many rows of its own calibrates on them alone; a smaller one adds the other
# intents' exemplars (herding picks central ones, whose scores run high: a stricter threshold).
OWN_ROWS = 500
OTHER_ROWS = 500  # of those exemplars: enough for a 5% quantile, and each costs a leave-one-out solve
ENERGY_TEMPERATURE = 0.05  # for the ridge head's raw scores (the temperature it fits on all of CLINC150)
QUANTILES = 101  # the calibration score distribution kept in the state: 0%, 1%, ..., 100%


@dataclass
class ClassStats:
    """Class means and one shared precision matrix of the exemplar memory, plus a background
    Gaussian of all exemplars. Rows of ``means`` follow the workspace's label order; a class with
    no exemplars has a row of NaN and is skipped."""

    means: np.ndarray
    counts: np.ndarray  # exemplars per class
    precision: np.ndarray
    background_mean: np.ndarray
    background_precision: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, n_classes: int) -> ClassStats:
        """One pass over the rows (``X^T X`` and per-class sums); the rest is per class."""
        n, dim = max(len(x), 1), x.shape[1]
        counts = np.bincount(y, minlength=n_classes)
        scatter = torch.zeros(dim, dim, dtype=torch.float64)
        class_sums = torch.zeros(n_classes, dim, dtype=torch.float64)
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
        for s in range(0, len(x), 16384):  # float64 a block at a time, not a float64 copy of all rows
            block = torch.from_numpy(np.ascontiguousarray(x[s : s + 16384])).double()
            scatter.addmm_(block.T, block)
            class_sums.index_add_(0, labels[s : s + 16384], block)
        scatter, sums = scatter.numpy(), class_sums.numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts[:, None]  # NaN rows: classes without exemplars
        seen = counts > 0
        within = scatter - matmul(sums[seen].T / counts[seen], sums[seen])  # sum of (x - mu_y)(x - mu_y)^T
        background = sums.sum(0) / n
        return cls(
            means=means,
            counts=counts,
            precision=_shrunk_inverse(within / n, len(x)),
            background_mean=background,
            background_precision=_shrunk_inverse(scatter / n - np.outer(background, background), len(x)),
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


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` on torch's threads. numpy's BLAS keeps a thread pool of its own, and waking it
    during a predict makes it fight the encoder's threads for the same cores: measured on 2
    cores, +2-4 ms on every single query, the encoder itself included."""
    return (torch.from_numpy(a) @ torch.from_numpy(b)).numpy()


def _shrunk_inverse(cov: np.ndarray, n: int) -> np.ndarray:
    """Inverse of ``cov`` shrunk toward a scaled identity, the more so the fewer rows (``n``) it
    was estimated from: from 200 exemplars, 384 dimensions are mostly unseen directions, and an
    unshrunk precision would call every new input far away."""
    dim = cov.shape[0]
    scale = max(float(np.trace(cov)) / dim, 1e-6)
    shrink = min(0.95, max(SHRINK, dim / max(n, 1)))
    return torch.linalg.inv(torch.from_numpy((1 - shrink) * cov + shrink * scale * np.eye(dim))).numpy()


class _Gaussians:
    """Squared Mahalanobis distances to ``means`` under one ``precision``, with the parts that do
    not depend on the input computed once: a predict then costs ``d^2 + d C``, not ``C d^2``."""

    def __init__(self, means: np.ndarray, precision: np.ndarray) -> None:
        self.precision = precision
        self.projected = matmul(precision, means.T)  # d x C
        self.offsets = (means.T * self.projected).sum(0)  # mu_c^T P mu_c

    def distances(self, x: np.ndarray) -> np.ndarray:
        return (matmul(x, self.precision) * x).sum(1)[:, None] - 2 * matmul(x, self.projected) + self.offsets[None, :]


def components(
    logits: torch.Tensor, x: np.ndarray, stats: ClassStats | None, own: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Every raw score for each row; the distance scores need ``stats`` (exemplars). ``own[i]`` is
    the class whose exemplar row ``i`` is (-1: none): its class mean is taken without it."""
    logits = logits.double()
    out = {
        "msp": torch.softmax(logits, 1).max(1).values.numpy(),
        "energy": torch.logsumexp(logits, 1).numpy(),
    }
    if stats is not None:
        known = stats.known
        if known.any():
            x64 = x.astype(np.float64)
            cos = matmul(x64, stats.unit_means.T)
            dist = stats.classes.distances(x64)
            if own is not None:
                column = np.cumsum(known) - 1  # class index -> column among the known ones
                rows = np.flatnonzero((own >= 0) & (stats.counts[np.maximum(own, 0)] > 1))
                c, n = own[rows], stats.counts[own[rows]][:, None].astype(np.float64)
                mean = (n * stats.means[c] - x64[rows]) / (n - 1)  # the class mean without the row
                d = x64[rows] - mean
                dist[rows, column[c]] = (matmul(d, stats.precision) * d).sum(1)
                norms = np.linalg.norm(mean, axis=1).clip(1e-12)
                cos[rows, column[c]] = (x64[rows] * mean).sum(1) / norms
            out["prototype"] = cos.max(1)
            out["mahalanobis"] = -dist.min(1)
            background = stats.background.distances(x64)
            out["relative"] = -(dist - background).min(1)
    return out


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


def head_logits(strategy: Strategy, x: torch.Tensor) -> torch.Tensor:
    """The head's scores on a fixed scale for the scores above. The ridge head re-fits its softmax
    temperature at every learn on that learn's examples alone (one class: any temperature fits), so
    its raw scores are used at a fixed ``ENERGY_TEMPERATURE`` instead; the neural heads' cosine
    logits already have a fixed scale."""
    from agent_il.strategies.ridge import RidgeStrategy

    if isinstance(strategy, RidgeStrategy):
        return strategy._raw_scores(x) / ENERGY_TEMPERATURE
    return strategy.logits(x)


def loo_logits(strategy: Strategy, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor | None:
    """Logits of fitted rows as if each had been left out of the fit: exact for the ridge head
    (``(score - lev * y) / (1 - lev)``, ``lev = w h^T (G + lam I)^-1 h``). None for strategies
    that cannot give them (their calibration falls back to held-out slices)."""
    from agent_il.strategies.ridge import RidgeStrategy

    if not isinstance(strategy, RidgeStrategy) or strategy.gram is None or strategy.weights is None:
        return None
    with torch.no_grad():
        h = strategy._features(x).double()
        leverage = strategy.leverage(h, weight)
        raw = h @ strategy.weights.double()
        target = torch.nn.functional.one_hot(y, raw.shape[1]).double()
        loo = (raw - leverage[:, None] * target) / (1 - leverage).clamp_min(1e-6)[:, None]
        return loo / ENERGY_TEMPERATURE


def threshold_for_keep(quantiles: list[float], keep: float) -> float | None:
    """The score that keeps ``keep`` of the calibration rows (None: keep everything)."""
    if keep >= 1.0:
        return None
    grid = np.linspace(0.0, 1.0, len(quantiles))
    return float(np.interp(1.0 - keep, grid, quantiles))


def keep_for_threshold(quantiles: list[float], threshold: float | None) -> float:
    """The share of calibration rows a threshold keeps (inverse of :func:`threshold_for_keep`)."""
    if threshold is None:
        return 1.0
    grid = np.linspace(0.0, 1.0, len(quantiles))
    q = np.asarray(quantiles)
    if threshold <= q[0]:
        return 1.0
    if threshold >= q[-1]:
        return 0.0
    return float(1.0 - np.interp(threshold, q, grid))


def check_keep(keep: Any) -> float:
    if isinstance(keep, bool) or not isinstance(keep, int | float) or not 0.0 < keep <= 1.0:
        raise InvalidInputError(f"keep must be a number in (0, 1], got {keep!r}")
    return float(keep)


def calibration(
    scores: np.ndarray,
    norm: dict[str, list[float]],
    keep: float,
    name: str,
    source: str,
    mode: str = "keep",
) -> dict[str, Any]:
    """The JSON the workspace state keeps under ``"ood"``."""
    quantiles = [float(v) for v in np.quantile(scores, np.linspace(0.0, 1.0, QUANTILES))]
    return {
        "score": name,
        "keep": keep,
        "threshold": threshold_for_keep(quantiles, keep),
        "mode": mode,
        "norm": norm,
        "quantiles": quantiles,
        "rows": len(scores),
        "source": source,
    }


def fit_threshold(in_scores: np.ndarray, in_correct: np.ndarray, oos_scores: np.ndarray) -> float:
    """The threshold that maximises in-scope accuracy (a rejected in-scope row counts as wrong)
    plus out-of-scope recall on labelled rows: Youden's J for "accept and be right"."""
    candidates = np.unique(np.concatenate([in_scores, oos_scores]))
    best, best_value = float(candidates[0]), -np.inf
    for t in candidates:
        value = (in_correct & (in_scores >= t)).mean() if len(in_scores) else 0.0
        value += (oos_scores < t).mean() if len(oos_scores) else 0.0
        if value > best_value:
            best, best_value = float(t), float(value)
    return best


@dataclass
class LearnCalibration:
    """What a learn computes once: the calibration, and the held-out-style logits of the rows it
    used (``rows`` index the learn's training rows), which the confusion check reuses."""

    calibration: dict[str, Any]
    rows: np.ndarray
    logits: torch.Tensor | None
    leave_one_out: bool


def calibrate_learn(
    strategy: Strategy,
    x: np.ndarray,
    y: np.ndarray,
    exemplar: np.ndarray,
    held_x: np.ndarray | None,
    stats: ClassStats | None,
    keep: float,
    name: str = DEFAULT_SCORE,
    seed: int = 0,
    others: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    held_logits: torch.Tensor | None = None,
) -> LearnCalibration:
    """Calibrate on rows the head has not fitted: this learn's training rows scored leave-one-out
    (rows just chosen as exemplars are left out while enough others remain, since the distance
    scores have seen them), plus the held-out slices ``held_x``. A strategy without leave-one-out
    scores calibrates on the held-out slices when there are any, else on its fitted scores (which
    run high, so it rejects more than ``keep`` asks). ``others`` (features, class, ridge weight)
    are the exemplars of classes this learn did not touch, added when the learn has fewer than
    ``OWN_ROWS`` rows, so that a small learn does not calibrate the whole workspace on itself; they
    are scored leave-one-out too (by the head and against their class mean). ``held_logits``:
    the head's :func:`head_logits` of ``held_x`` when the caller has them already."""
    from agent_il.strategies.ridge import _REFERENCE_COUNT

    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(~exemplar)
    if len(rows) < 20:
        rows = np.arange(len(x))
    if len(rows) > CALIBRATION_ROWS:
        rows = np.sort(rng.choice(rows, CALIBRATION_ROWS, replace=False))
    counts = np.bincount(y, minlength=int(y.max()) + 1).astype(np.float64)
    lx, ly, lw = x[rows], y[rows], np.sqrt(_REFERENCE_COUNT / counts[y[rows]])
    if others is not None and len(others[0]) and len(rows) < OWN_ROWS:
        ox, oy, ow = others
        if len(ox) > OTHER_ROWS:
            pick = np.sort(rng.choice(len(ox), OTHER_ROWS, replace=False))
            ox, oy, ow = ox[pick], oy[pick], ow[pick]
        lx, ly, lw = np.concatenate([lx, ox]), np.concatenate([ly, oy]), np.concatenate([lw, ow])
    loo = loo_logits(strategy, torch.from_numpy(lx), torch.from_numpy(ly).long(), torch.from_numpy(lw))
    parts: list[tuple[np.ndarray, torch.Tensor, np.ndarray]] = []
    sources = []
    if loo is not None:
        parts.append((x[rows], loo[: len(rows)], np.where(exemplar[rows], y[rows], -1)))
        sources.append(f"{len(rows)} learned examples, leave-one-out")
        if len(lx) > len(rows):
            parts.append((lx[len(rows) :], loo[len(rows) :], ly[len(rows) :]))
            sources.append(f"{len(lx) - len(rows)} exemplars of other intents, leave-one-out")
    if held_x is not None and len(held_x):
        if held_logits is None:
            held_logits = head_logits(strategy, torch.from_numpy(held_x))
        if len(held_x) > CALIBRATION_ROWS:
            pick = np.sort(rng.choice(len(held_x), CALIBRATION_ROWS, replace=False))
            held_x, held_logits = held_x[pick], held_logits[pick]
        parts.append((held_x, held_logits, np.full(len(held_x), -1)))
        sources.append(f"{len(held_x)} held-out examples")
    xt = torch.from_numpy(x[rows])
    if not parts:
        parts.append((x[rows], head_logits(strategy, xt), np.where(exemplar[rows], y[rows], -1)))
        sources.append(f"{len(rows)} learned examples, as fitted")
    cx, clogits, own = (
        np.concatenate([p[0] for p in parts]),
        torch.cat([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )
    comps = components(clogits, cx, stats, own)
    norm = standardiser(comps)
    cal = calibration(score(name, comps, norm), norm, keep, name, " + ".join(sources))
    own_logits = loo[: len(rows)] if loo is not None else strategy.logits(xt)
    return LearnCalibration(cal, rows, own_logits, loo is not None)


def rejections(cal: dict[str, Any] | None, logits: torch.Tensor, x: np.ndarray, stats: ClassStats | None):
    """The in-scope score of each row and whether it is kept, under a workspace's calibration;
    ``logits`` from :func:`head_logits`."""
    if cal is None:
        return None, np.ones(len(x), dtype=bool)
    scores = score(cal["score"], components(logits, x, stats), cal["norm"])
    if cal["threshold"] is None:
        return scores, np.ones(len(x), dtype=bool)
    return scores, scores >= cal["threshold"]
