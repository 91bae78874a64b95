"""The rejection threshold: refitted inside every learn, set or fitted by the user.

The threshold is a quantile of the scores of in-scope rows the head has not fitted: this learn's
examples scored as left out with their run (:func:`runs`; exact and cheap for the ridge head) and
the held-out slices. The workspace keeps the target keep rate
(:class:`agent_il.config.RejectionSettings`), so every learn recalibrates to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from agent_il import validation
from agent_il.config import RejectionSettings, WorkspaceConfig
from agent_il.errors import InvalidInputError
from agent_il.ood.evidence import Exemplars
from agent_il.ood.scores import ClassStats, components, head_logits, score, standardiser
from agent_il.results import UNKNOWN
from agent_il.state import Calibration, WorkspaceState, now
from agent_il.strategies.base import Strategy

if TYPE_CHECKING:
    import torch

CALIBRATION_ROWS = 2000  # in-scope rows a learn calibrates on (random subset beyond that)
# A learn with this many rows of its own (or with the held-out slices) calibrates on them alone; a
# smaller one adds the other intents' exemplars, scored as if left out like its own rows.
OWN_ROWS = 500
UNSEEN_ROWS = 100  # held-out rows enough to calibrate on alone, when the encoder was tuned on the learned ones
OTHER_ROWS = 500  # of those exemplars: enough for a 5% quantile, and each costs a leave-one-out solve
FOLDS = 5  # each class's rows of a learn calibrate as left out in this many contiguous runs (see runs)
QUANTILES = 101  # the calibration score distribution kept in the state: 0%, 1%, ..., 100%


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

    calibration: Calibration
    rows: np.ndarray
    logits: torch.Tensor | None
    leave_one_out: bool


def calibrate_learn(
    strategy: Strategy,
    x: np.ndarray,
    y: np.ndarray,
    exemplar: np.ndarray,
    stats: ClassStats | None,
    settings: RejectionSettings,
    *,
    held_x: np.ndarray | None = None,
    held_logits: torch.Tensor | None = None,
    others: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    encoder_saw: bool = False,
    learn_runs: tuple[np.ndarray, np.ndarray] | None = None,
) -> LearnCalibration:
    """Calibrate ``settings`` (score, keep rate) on rows the head has not fitted: this learn's
    training rows ``x`` (class ``y``) scored as left out with their run (:func:`runs`; the head's
    scores, and the distance scores without the run's ``exemplar`` rows), plus the held-out
    slices ``held_x``. ``learn_runs``: the run of each row of ``x`` and of ``held_x`` (-1: a slice
    of an earlier learn), the runs cut from the learn's rows before its held-out slice was drawn;
    a held-out row of a run is scored with the run's training rows left out. A strategy without
    leave-one-out scores calibrates on the held-out slices when there are any, else on its fitted
    scores (which run high, so it rejects more than the keep rate asks). ``others`` (features,
    class, the size of the class in its learn, in the order they were learned) are the exemplars
    of classes this learn did not touch, added when the learn and the held-out slices together
    have fewer than ``OWN_ROWS`` rows, so that a small learn does not calibrate the whole
    workspace on itself; they are left out in runs too. ``held_logits``: the head's
    :func:`head_logits` of ``held_x`` when the caller has them. ``encoder_saw``: the encoder was
    fine-tuned on ``x`` (consolidation), so even left out of the head they score like familiar
    rows, well above new queries: with ``UNSEEN_ROWS`` held-out rows, those calibrate alone (the
    learned rows' scores are still returned, for the confusion check)."""
    import torch

    rng = np.random.default_rng(seed)
    held_x = np.zeros((0, x.shape[1]), dtype=x.dtype) if held_x is None else held_x
    own_runs, held_runs = (runs(y), np.full(len(held_x), -1)) if learn_runs is None else learn_runs
    rows = np.arange(len(x))
    if len(rows) > CALIBRATION_ROWS:  # whole runs, so that a sampled row's run-mates leave with it
        ids, sizes = np.unique(own_runs, return_counts=True)
        order = rng.permutation(len(ids))
        take = int(np.searchsorted(np.cumsum(sizes[order]), CALIBRATION_ROWS, side="right"))
        rows = np.flatnonzero(np.isin(own_runs, ids[order[:take]]))
        if not len(rows):  # one run longer than the sample: rows at random
            rows = np.sort(rng.choice(len(x), CALIBRATION_ROWS, replace=False))
    counts = np.bincount(y, minlength=int(y.max()) + 1).astype(np.float64)
    own_runs = own_runs[rows]
    if len(held_x) > CALIBRATION_ROWS:
        pick = np.sort(rng.choice(len(held_x), CALIBRATION_ROWS, replace=False))
        held_x, held_runs = held_x[pick], held_runs[pick]
        held_logits = None if held_logits is None else held_logits[pick]
    mine = np.flatnonzero(held_runs >= 0)  # held-out rows of this learn: unfitted rows (count 0) of their run
    lx, ly = np.concatenate([x[rows], held_x[mine]]), np.concatenate([y[rows], held_runs[mine] // FOLDS])
    lc, groups = np.concatenate([counts[y[rows]], np.zeros(len(mine))]), np.concatenate([own_runs, held_runs[mine]])
    if others is not None and len(others[0]) and len(rows) + len(held_x) < OWN_ROWS:
        ox, oy, oc = others
        if len(ox) > OTHER_ROWS:
            pick = np.sort(rng.choice(len(ox), OTHER_ROWS, replace=False))
            ox, oy, oc = ox[pick], oy[pick], oc[pick]
        lx, ly, lc = np.concatenate([lx, ox]), np.concatenate([ly, oy]), np.concatenate([lc, oc])
    span = FOLDS * (int(ly.max()) + 1)  # run ids of this learn below, of other intents above
    groups = np.concatenate([groups, runs(ly[len(groups) :]) + span])
    loo = strategy.leave_one_out(
        torch.from_numpy(lx), torch.from_numpy(ly).long(), torch.from_numpy(lc), torch.from_numpy(groups)
    )
    if loo is not None:
        loo = head_logits(strategy, loo)
    parts: list[tuple[np.ndarray, torch.Tensor, np.ndarray, np.ndarray]] = []
    sources = []
    unseen = encoder_saw and len(held_x) >= UNSEEN_ROWS
    n, m = len(rows), len(rows) + len(mine)
    if loo is not None and not unseen:
        parts.append((x[rows], loo[:n], np.where(exemplar[rows], y[rows], -1), own_runs))
        sources.append(f"{n} learned examples, left out in runs")
    if loo is not None and len(lx) > m:
        parts.append((lx[m:], loo[m:], ly[m:], groups[m:]))
        sources.append(f"{len(lx) - m} exemplars of other intents, left out in runs")
    if len(held_x):
        if held_logits is None:
            held_logits = head_logits(strategy, strategy.raw_scores(torch.from_numpy(held_x)))
        if loo is not None and len(mine):
            held_logits = held_logits.clone()
            held_logits[torch.from_numpy(mine)] = loo[n:m].to(held_logits.dtype)
        alone = 2 * span + np.arange(len(held_x))  # a slice of an earlier learn: no run here
        parts.append((held_x, held_logits, np.full(len(held_x), -1), np.where(held_runs >= 0, held_runs, alone)))
        sources.append(
            f"{len(held_x)} held-out examples" + (" (the encoder was tuned on the learned ones)" if unseen else "")
        )
    own_raw = None
    if not parts:
        own_raw = strategy.raw_scores(torch.from_numpy(x[rows]))
        parts.append((x[rows], head_logits(strategy, own_raw), np.where(exemplar[rows], y[rows], -1), own_runs))
        sources.append(f"{n} learned examples, as fitted")
    cx, clogits, own, cgroups = (
        np.concatenate([p[0] for p in parts]),
        torch.cat([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
    )
    comps = components(clogits, cx, stats, own, cgroups)
    norm = standardiser(comps)
    cal = _fitted(score(settings.score, comps, norm), norm, settings.keep, " + ".join(sources))
    if loo is not None:
        own_logits = loo[:n]
    else:
        own_logits = strategy.raw_scores(torch.from_numpy(x[rows])) if own_raw is None else own_raw
        own_logits = own_logits / strategy.temperature
    return LearnCalibration(cal, rows, own_logits, loo is not None)


def runs(y: np.ndarray) -> np.ndarray:
    """Group ids that cut each class's rows, in the order given, into ``FOLDS`` contiguous runs
    (a row each when the class has no more). Examples are written in batches, one author's
    paraphrases in a row, and a query comes from someone else: a row scored with its batch still
    fitted runs as familiar as a twin, and the threshold rejects more than its keep rate (CLINC150).
    Rows in random order make this plain K-fold, a shade conservative (BANKING77: +0.1)."""
    groups = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        groups[rows] = c * FOLDS + np.arange(len(rows)) * FOLDS // len(rows)
    return groups


def _fitted(scores: np.ndarray, norm: dict[str, list[float]], keep: float, source: str) -> Calibration:
    """The distribution as its quantiles, each at the ``(n + 1) p``-th smallest score (Weibull's
    plotting position): a new in-scope row then falls below the ``p`` quantile with probability
    ``p`` whatever ``n`` is, as split conformal prediction has it. numpy's default interpolates
    toward the middle, so from 50 calibration rows a 95% keep rate kept about 93%."""
    quantiles = [float(v) for v in np.quantile(scores, np.linspace(0.0, 1.0, QUANTILES), method="weibull")]
    return Calibration(threshold_for_keep(quantiles, keep), norm, quantiles, len(scores), source)


class Calibrator:
    """The rejection setting of one workspace. It is handed the state and head it works on;
    ``current`` gives the committed state, for :meth:`setting`."""

    def __init__(self, current: Callable[[], WorkspaceState]) -> None:
        self._current = current

    def setting(self) -> dict[str, object] | None:
        """Score, target keep rate, threshold, and what it was calibrated on (None before a learn)."""
        return self._current().rejection_json()

    def adjusted(
        self,
        state: WorkspaceState,
        keep: float | None = None,
        threshold: float | None = None,
        fit: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> WorkspaceState:
        """A copy of ``state`` with the settings and threshold after the user sets a keep rate, a
        threshold, or fits it on labelled rows ``fit`` = (in-scope scores, whether the head labels
        them right, oos scores)."""
        config, cal = self._adjusted(state, keep, threshold, fit)
        new = state.copy().with_config(config)
        new.calibration, new.updated = cal, now()
        return new

    def _adjusted(
        self,
        state: WorkspaceState,
        keep: float | None,
        threshold: float | None,
        fit: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> tuple[WorkspaceConfig, Calibration]:
        cal = state.calibration
        if cal is None:
            raise InvalidInputError("nothing to calibrate yet: learn first")
        if sum(v is not None for v in (keep, threshold, fit)) != 1:
            raise InvalidInputError("give exactly one of keep, threshold, or labelled texts")
        if keep is not None:
            keep = validation.keep_rate(keep)
            return state.config.with_rejection(keep=keep, mode="set"), _replace(
                cal, threshold_for_keep(cal.quantiles, keep)
            )
        if threshold is not None:
            threshold = validation.number(threshold, "threshold")
            keep = keep_for_threshold(cal.quantiles, threshold)
            return state.config.with_rejection(keep=keep, mode="set"), _replace(cal, threshold)
        assert fit is not None
        in_scores, in_right, oos_scores = fit
        if not len(in_scores):  # only out-of-scope rows: the in-scope side is the calibration
            in_scores, in_right = np.asarray(cal.quantiles), np.ones(len(cal.quantiles), dtype=bool)
        threshold = fit_threshold(in_scores, in_right, oos_scores)
        keep = keep_for_threshold(cal.quantiles, threshold)
        fitted_on = {"in_scope": len(fit[0]), "out_of_scope": len(oos_scores)}
        return state.config.with_rejection(keep=keep, mode="fitted"), _replace(cal, threshold, fitted_on)

    @staticmethod
    def labelled(
        state: WorkspaceState,
        strategy: Strategy,
        memory: Callable[[], Exemplars],
        texts: Sequence[str],
        labels: Sequence[str] | None,
        oos_label: str,
        encode: Callable[[list[str]], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For :meth:`adjusted`'s ``fit``: the scores of labelled ``texts`` (``labels`` equal to
        ``oos_label`` or ``unknown`` are out of scope, the others must be known intents) and
        whether the head labels the in-scope ones right. Labels are checked before any encoding."""
        texts = validation.texts(texts)
        label_list = validation.labels(labels, len(texts), allow_unknown=True)
        outside = np.array([y in (oos_label, UNKNOWN) for y in label_list])
        strange = sorted({y for y, o in zip(label_list, outside) if not o and y not in set(state.labels)})
        if strange:
            raise InvalidInputError(
                f"labels neither known nor {oos_label!r}: {', '.join(strange[:5])}; "
                "label out-of-scope rows with --oos-label"
            )
        if not outside.any():
            raise InvalidInputError(f"no out-of-scope rows (label {oos_label!r}) to fit the threshold on")
        assert state.calibration is not None
        import torch

        x = encode(texts)
        raw = strategy.raw_scores(torch.from_numpy(x))
        comps = components(head_logits(strategy, raw), x, memory().stats)
        scores = score(state.config.rejection.score, comps, state.calibration.norm)
        best = (raw / strategy.temperature).argmax(1).tolist()
        right = np.array([state.labels[i] == y for i, y in zip(best, label_list)])
        return scores[~outside], right[~outside], scores[outside]


def _replace(cal: Calibration, threshold: float | None, fitted_on: dict[str, int] | None = None) -> Calibration:
    return Calibration(threshold, cal.norm, cal.quantiles, cal.rows, cal.source, fitted_on or cal.fitted_on)
