"""Discovery of new intents: cluster the inbox (inputs rejected as unknown) into candidates.

Agglomerative clustering, average linkage on cosine distance, cut at a fixed distance: no cluster
count to guess, and deterministic, so ``inbox learn KEY`` recomputes exactly what ``discover``
showed. A cluster's key is a hash of its members: if the inbox changed in between, the key no
longer exists and nothing is learned by mistake.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agent_il import validation
from agent_il.memory.records import Records

DISTANCE = 0.5  # cosine distance at which clusters stop merging (chosen on CLINC150, benchmarks/discovery.py)
MIN_SIZE = 3  # smaller groups are left in the inbox as noise


@dataclass(frozen=True)
class Cluster:
    key: str
    size: int
    ids: list[str]
    examples: list[str | None]  # the members nearest the cluster's centre first
    closest_intent: str  # the known intent its members were most often closest to
    cohesion: float  # mean cosine of members to their centre

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cluster(records: Records, distance: float = DISTANCE, min_size: int = MIN_SIZE, examples: int = 5) -> list[Cluster]:
    """Candidate intents among ``records``, largest first."""
    distance = validation.distance(distance, "distance")
    min_size = validation.positive_int(min_size, "min_size")
    order = np.argsort(records.ids)  # the same inbox gives the same clusters
    recs = records.take(order.tolist())
    if len(recs.ids) < max(min_size, 2):
        return []
    from sklearn.cluster import AgglomerativeClustering

    x = recs.x / np.linalg.norm(recs.x, axis=1, keepdims=True).clip(1e-12)
    assign = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance
    ).fit_predict(x)
    out = []
    for c in np.unique(assign):
        rows = np.flatnonzero(assign == c)
        if len(rows) < min_size:
            continue
        centre = x[rows].mean(0)
        centre /= np.linalg.norm(centre)
        sims = x[rows] @ centre
        ranked = rows[np.argsort(-sims)]
        ids = sorted(recs.ids[r] for r in rows)
        out.append(
            Cluster(
                key=hashlib.sha256("\n".join(ids).encode()).hexdigest()[:8],
                size=len(rows),
                ids=ids,
                examples=[validation.cut(recs.texts[r]) for r in ranked[:examples]],
                closest_intent=Counter(recs.labels[r] for r in rows).most_common(1)[0][0],
                cohesion=round(float(sims.mean()), 3),
            )
        )
    return sorted(out, key=lambda c: (-c.size, c.key))
