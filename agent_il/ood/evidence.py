"""The committed exemplar memory held in process: its class statistics (for rejection) and the
nearest-exemplar evidence behind every prediction."""

from __future__ import annotations

import numpy as np

from agent_il.memory.records import Records
from agent_il.memory.store import RecordStore
from agent_il.ood.scores import ClassStats, matmul, top_k
from agent_il.results import Evidence


def stats_from(records: Records, labels: list[str]) -> ClassStats | None:
    index = {y: i for i, y in enumerate(labels)}
    rows = [i for i, y in enumerate(records.labels) if y in index]
    if not rows:
        return None
    return ClassStats.fit(records.x[rows], np.array([index[records.labels[i]] for i in rows]), len(labels))


EXACT_ROWS = 10_000  # exemplars up to which evidence is an exact scan in process; Chroma's index beyond
SLACK = 8  # extra Chroma hits asked for, to make up for records no commit names (yet)


class Exemplars:
    """The committed exemplar memory of one generation, held in process: its class statistics
    (for rejection) and the nearest-exemplar evidence. Up to ``EXACT_ROWS`` exemplars, evidence
    is an exact scan, one matrix product (0.2 ms for a query at 3,000 exemplars, where a Chroma
    query restricted to committed records took 3-11 ms). Beyond, a scan reads the whole matrix
    for every query (linear, 18 ms at 100k), while Chroma's HNSW index answers in about 2 ms
    whatever its size: evidence comes from it (approximate), keeping only the committed ones."""

    def __init__(self, records: Records, labels: list[str]) -> None:
        self.records = records
        self.row = {i: r for r, i in enumerate(records.ids)}
        norms = np.linalg.norm(records.x, axis=1, keepdims=True) if len(records.ids) else np.ones((0, 1))
        self.unit = records.x / norms.clip(1e-12)
        self.stats = stats_from(records, labels)

    def nearest(self, x: np.ndarray, n: int, store: RecordStore | None = None) -> list[list[Evidence]]:
        """The ``n`` exemplars most similar (cosine) to each row of ``x``, most similar first;
        ``store`` is the Chroma collection holding them, searched beyond ``EXACT_ROWS``."""
        n = min(n, len(self.records.ids))
        if n <= 0:
            return [[] for _ in range(len(x))]
        if store is None or len(self.records.ids) <= EXACT_ROWS:
            return self._scan(x, n)
        out: list[list[Evidence]] = []
        short = []
        for i, hits in enumerate(store.nearest_ids(x, n + SLACK, live=len(self.records.ids))):
            live = [(self.row[j], sim) for j, sim in hits if j in self.row][:n]
            out.append(self._evidence(live))
            if len(live) < n:  # another writer's uncommitted records crowded them out
                short.append(i)
        for i, found in zip(short, self._scan(x[short], n) if short else []):
            out[i] = found
        return out

    def _scan(self, x: np.ndarray, n: int) -> list[list[Evidence]]:
        sims = matmul(x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12), self.unit.T)
        values, rows = top_k(sims, n)
        return [self._evidence(list(zip(r, v))) for r, v in zip(rows.tolist(), values.tolist())]

    def _evidence(self, hits: list[tuple[int, float]]) -> list[Evidence]:
        recs = self.records
        return [Evidence(recs.texts[j], recs.labels[j], str(recs.metadatas[j]["task"]), sim) for j, sim in hits]
