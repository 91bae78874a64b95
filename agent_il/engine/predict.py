"""The predict step on vectors, with no I/O: the head's raw scores are computed once, and the
confidence, the rejection score and the answer all derive from them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from agent_il import validation
from agent_il.memory.store import RecordStore
from agent_il.ood.evidence import Exemplars
from agent_il.ood.scores import head_logits, rejections, softmax, top_k
from agent_il.results import UNKNOWN, Prediction
from agent_il.state import WorkspaceState
from agent_il.strategies.heads import Head


def predict(
    state: WorkspaceState,
    head: Head,
    memory: Exemplars,
    x: np.ndarray,
    k: int,
    evidence: int,
    store: RecordStore | None = None,
) -> tuple[list[Prediction], np.ndarray | None]:
    """Predictions for the rows of ``x`` and their in-scope scores (None without calibration).
    ``store`` holds ``memory``'s records, searched for evidence in large memories."""
    raw = head.raw_scores(x)
    top_p, top_i = top_k(softmax(raw.astype(np.float64) / head.temperature), min(k, raw.shape[1]))
    score_name = state.config.rejection.score
    scores, kept = rejections(score_name, state.calibration, head_logits(head, raw), x, memory.stats)
    out = []
    near = memory.nearest(x, evidence, store)
    limit = validation.max_text_chars()  # evidence is cut to the longest learnable text
    near = [
        [e if e.text is None or len(e.text) <= limit else replace(e, text=validation.cut(e.text, limit)) for e in ev]
        for ev in near
    ]
    for n, (p_row, i_row, ev) in enumerate(zip(top_p.tolist(), top_i.tolist(), near)):
        top = [(state.labels[i], float(p)) for p, i in zip(p_row, i_row)]
        score = None if scores is None else float(scores[n])
        out.append(Prediction(top[0][0] if kept[n] else UNKNOWN, top[0][1], top, ev, known=bool(kept[n]), score=score))
    return out, scores
