"""The exemplar memory: a Chroma collection that is both the replay buffer and the agent's
knowledge base (text, label, task, time, embedding), queried for evidence at predict time.

Records are never edited in place. A learn adds new records first, the workspace commit then
names which ids are live, and only after that are dropped ids deleted; ids that no commit
names are orphans of an interrupted learn and are removed by :meth:`ExemplarMemory.prune`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent_il.errors import WorkspaceError

COLLECTION = "exemplars"


@dataclass(frozen=True)
class Evidence:
    """A stored exemplar returned as the reason for a prediction."""

    text: str | None
    label: str
    task: str
    similarity: float


@dataclass
class Exemplars:
    """Exemplars held in process: ids, embeddings (n x d) and their labels, aligned."""

    ids: list[str]
    x: np.ndarray
    labels: list[str]


def embedded_client(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


class ExemplarMemory:
    def __init__(self, client: Any, collection: str = COLLECTION) -> None:
        self._client = client
        self._col = client.get_or_create_collection(
            collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def add(
        self,
        ids: Sequence[str],
        x: np.ndarray,
        texts: Sequence[str | None],
        metadatas: Sequence[dict[str, str | int | float]],
    ) -> None:
        for start in range(0, len(ids), 4096):
            end = start + 4096
            self._col.add(
                ids=list(ids[start:end]),
                embeddings=np.ascontiguousarray(x[start:end], dtype=np.float32),
                documents=list(texts[start:end]),
                metadatas=list(metadatas[start:end]),
            )

    def delete(self, ids: Collection[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), 4096):
            self._col.delete(ids=ids[start : start + 4096])

    def load(self, ids: Sequence[str]) -> Exemplars:
        """Embeddings and labels of ``ids``, in the order given."""
        if not ids:
            return Exemplars([], np.zeros((0, 0), dtype=np.float32), [])
        rows: dict[str, tuple[np.ndarray, str]] = {}
        for start in range(0, len(ids), 4096):
            got = self._col.get(ids=list(ids[start : start + 4096]), include=["embeddings", "metadatas"])
            for i, emb, meta in zip(got["ids"], got["embeddings"], got["metadatas"]):
                rows[i] = (np.asarray(emb, dtype=np.float32), str(meta["label"]))
        missing = [i for i in ids if i not in rows]
        if missing:
            raise WorkspaceError(f"exemplar memory lost {len(missing)} committed records (e.g. {missing[0]})")
        return Exemplars(list(ids), np.stack([rows[i][0] for i in ids]), [rows[i][1] for i in ids])

    def all_ids(self) -> set[str]:
        return set(self._col.get(include=[])["ids"])

    def prune(self, live: Collection[str]) -> int:
        """Delete records no commit names (left by an interrupted learn); returns how many."""
        orphans = self.all_ids() - set(live)
        self.delete(orphans)
        return len(orphans)

    def count(self) -> int:
        return int(self._col.count())

    def nearest(self, x: np.ndarray, n: int) -> list[list[Evidence]]:
        """The ``n`` stored exemplars most similar to each row of ``x``."""
        total = self.count()
        if n <= 0 or total == 0 or len(x) == 0:
            return [[] for _ in range(len(x))]
        res = self._col.query(
            query_embeddings=np.ascontiguousarray(x, dtype=np.float32),
            n_results=min(n, total),
            include=["documents", "metadatas", "distances"],
        )
        return [
            [
                Evidence(text=doc, label=str(meta["label"]), task=str(meta["task"]), similarity=1.0 - float(dist))
                for doc, meta, dist in zip(docs, metas, dists)
            ]
            for docs, metas, dists in zip(res["documents"], res["metadatas"], res["distances"])
        ]
