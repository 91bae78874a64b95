"""Labelled embeddings kept in Chroma: the exemplar memory (replay buffer and the agent's
knowledge base, queried for evidence at predict time) and the held-out test slices.

Records are never edited in place. A learn adds new records first, the workspace commit then
names which ids are live, and only after that are dropped ids deleted; ids that no commit
names are orphans of an interrupted operation and are removed by :meth:`RecordStore.prune`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent_il.errors import WorkspaceError

Metadata = dict[str, str | int | float]
_BATCH = 4096


@dataclass(frozen=True)
class Evidence:
    """A stored exemplar returned as the reason for a prediction."""

    text: str | None
    label: str
    task: str
    similarity: float


@dataclass
class Records:
    """Records held in process, aligned by position."""

    ids: list[str]
    x: np.ndarray
    texts: list[str | None] = field(default_factory=list)
    metadatas: list[Metadata] = field(default_factory=list)

    @functools.cached_property
    def labels(self) -> list[str]:
        """Built once: callers index it per row (records are never edited in place)."""
        return [str(m["label"]) for m in self.metadatas]

    def take(self, rows: Sequence[int]) -> Records:
        rows = list(rows)
        return Records(
            [self.ids[r] for r in rows],
            self.x[rows],
            [self.texts[r] for r in rows],
            [self.metadatas[r] for r in rows],
        )

    @classmethod
    def empty(cls, dim: int = 0) -> Records:
        return cls([], np.zeros((0, dim), dtype=np.float32), [], [])


class RecordStore:
    """One Chroma collection of labelled embeddings (cosine space, no embedding function:
    embeddings always come from our encoder)."""

    def __init__(self, client: Any, collection: str) -> None:
        self._col = client.get_or_create_collection(
            collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def add(self, records: Records, generation: int = 0) -> None:
        """Add ``records`` for the commit of ``generation`` (readers of an older state skip
        them); they are stamped with the time, so pruning spares another writer's fresh ones."""
        stamp = {"stored": time.time(), "generation": generation}
        for s in range(0, len(records.ids), _BATCH):
            self._col.add(
                ids=records.ids[s : s + _BATCH],
                embeddings=np.ascontiguousarray(records.x[s : s + _BATCH], dtype=np.float32),
                documents=records.texts[s : s + _BATCH],
                metadatas=[{**m, **stamp} for m in records.metadatas[s : s + _BATCH]],
            )

    def delete(self, ids: Collection[str]) -> None:
        ids = list(ids)
        for s in range(0, len(ids), _BATCH):
            self._col.delete(ids=ids[s : s + _BATCH])

    def load(self, ids: Sequence[str]) -> Records:
        """The records of ``ids``, in the order given; all of them must exist."""
        if not ids:
            return Records.empty()
        rows: dict[str, tuple[np.ndarray, str | None, Metadata]] = {}
        for s in range(0, len(ids), _BATCH):
            got = self._col.get(ids=list(ids[s : s + _BATCH]), include=["embeddings", "documents", "metadatas"])
            for i, emb, doc, meta in zip(got["ids"], got["embeddings"], got["documents"], got["metadatas"]):
                rows[i] = (np.asarray(emb, dtype=np.float32), doc, dict(meta))
        missing = [i for i in ids if i not in rows]
        if missing:
            raise WorkspaceError(f"the Chroma store lost {len(missing)} committed records (e.g. {missing[0]})")
        return Records(
            list(ids),
            np.stack([rows[i][0] for i in ids]),
            [rows[i][1] for i in ids],
            [rows[i][2] for i in ids],
        )

    def all_ids(self) -> set[str]:
        return set(self._col.get(include=[])["ids"])

    def prune(self, live: Collection[str], min_age: float = 0.0) -> int:
        """Delete records no commit names; returns how many. With ``min_age``, only those added
        at least that many seconds ago: on a shared server, younger ones may be another writer's
        that its commit is about to name."""
        if min_age > 0:
            old = self._col.get(where={"stored": {"$lt": time.time() - min_age}}, include=[])["ids"]
        else:
            old = self._col.get(include=[])["ids"]
        orphans = set(old) - set(live)
        self.delete(orphans)
        return len(orphans)

    def count(self) -> int:
        return int(self._col.count())

    def nearest(self, x: np.ndarray, n: int, generation: int | None = None) -> list[list[Evidence]]:
        """The ``n`` stored records most similar to each row of ``x``; with ``generation``, only
        records committed by then (on a shared server, another writer's learn in progress has
        added records that its commit does not name yet)."""
        if n <= 0 or len(x) == 0:
            return [[] for _ in range(len(x))]
        res = self._col.query(  # one round trip: Chroma returns fewer than n when it holds fewer
            query_embeddings=np.ascontiguousarray(x, dtype=np.float32),
            n_results=n,
            where={"generation": {"$lte": generation}} if generation is not None else None,
            include=["documents", "metadatas", "distances"],
        )
        return [
            [
                Evidence(text=doc, label=str(meta["label"]), task=str(meta["task"]), similarity=1.0 - float(dist))
                for doc, meta, dist in zip(docs, metas, dists)
            ]
            for docs, metas, dists in zip(res["documents"], res["metadatas"], res["distances"])
        ]
