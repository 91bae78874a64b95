"""Labelled embeddings kept in Chroma: every learned example, the exemplar memory (replay buffer
and the evidence behind predictions) and the held-out test slices.

The exemplars are a selection of the examples: a learn names some of its examples as exemplars
and adds no second copy, so the exemplar store reads the ids it does not hold from the examples
(it holds the exemplars of workspaces from before every example was kept, and relabelled
copies). Dropping an exemplar is then only a commit that no longer names it, not a Chroma delete
(a Chroma add or delete costs 20-50 ms whatever its size: the second add and the deletes were
about 0.06 s of a 0.4 s learn at 150 intents).

Records are never edited in place. A learn adds new records first, the workspace commit then
names which ids are live, and only after that are dropped ids deleted; ids that no commit
names are orphans of an interrupted operation and are removed by :meth:`RecordStore.prune`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from agent_il.errors import WorkspaceError
from agent_il.memory.records import Metadata, Records

_BATCH = 4096
_Row = tuple[np.ndarray, str | None, Metadata]


class RecordStore:
    """One Chroma collection of labelled embeddings (cosine space, no embedding function:
    embeddings always come from our encoder).

    Records are immutable once added, so the rows this process has read are kept in process and
    a learn reads from Chroma only what was added since: a learn no longer costs a read of the
    whole memory. (Rows are kept as Chroma returns them, not as added: a cosine collection
    renormalises embeddings, which moves the last bit of some values.)"""

    def __init__(self, client: Any, collection: str, fallback: RecordStore | None = None) -> None:
        self._col = client.get_or_create_collection(
            collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        self._rows: dict[str, _Row] = {}
        self._last: Records | None = None  # the last load: the next one is often it plus a few
        self._fallback = fallback  # where ids this collection does not hold are read from
        self._borrowed: set[str] = set()  # ids read from the fallback: never this collection's to delete

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
        """Delete ``ids`` from this collection (not from the fallback: ids read from it are
        skipped, so un-naming a borrowed exemplar costs no Chroma call)."""
        ids = list(ids)
        for i in ids:
            self._rows.pop(i, None)
        self._last = None
        own = [i for i in ids if i not in self._borrowed]
        self._borrowed.difference_update(ids)
        for s in range(0, len(own), _BATCH):
            self._col.delete(ids=own[s : s + _BATCH])

    def load(self, ids: Sequence[str], *, from_chroma: bool = False) -> Records:
        """The records of ``ids``, in the order given; all of them must exist. ``from_chroma``
        reads every one from the store (to check it), not from what this process holds."""
        if not ids:
            return Records.empty()
        if from_chroma:
            return self._load(ids, from_chroma=True)
        last = self._last
        n = 0 if last is None else len(last.ids)
        if last is not None and len(ids) >= n and list(ids[:n]) == last.ids:  # a learn adds at the end
            out = last if len(ids) == n else Records.concat([last, self._load(ids[n:])])
        else:
            out = self._load(ids)
        self._last = out
        return out

    def _load(self, ids: Sequence[str], *, from_chroma: bool = False) -> Records:
        rows = {} if from_chroma else {i: self._rows[i] for i in ids if i in self._rows}
        wanted = [i for i in ids if i not in rows]
        rows.update(self._fetch(wanted))
        if self._fallback is not None and len(rows) < len(ids):
            borrowed = self._fallback._fetch([i for i in wanted if i not in rows])
            rows.update(borrowed)
            self._borrowed.update(borrowed)
        if not from_chroma:
            self._rows.update((i, rows[i]) for i in wanted if i in rows)
        missing = [i for i in ids if i not in rows]
        if missing:
            raise WorkspaceError(f"the Chroma store lost {len(missing)} committed records (e.g. {missing[0]})")
        return Records(
            list(ids),
            np.stack([rows[i][0] for i in ids]),
            [rows[i][1] for i in ids],
            [rows[i][2] for i in ids],
        )

    def _fetch(self, ids: Sequence[str]) -> dict[str, _Row]:
        """The rows of those ``ids`` this collection holds, read from Chroma."""
        rows: dict[str, _Row] = {}
        for s in range(0, len(ids), _BATCH):
            got = self._col.get(ids=list(ids[s : s + _BATCH]), include=["embeddings", "documents", "metadatas"])
            for i, emb, doc, meta in zip(got["ids"], got["embeddings"], got["documents"], got["metadatas"]):
                rows[i] = (np.asarray(emb, dtype=np.float32), doc, dict(meta))
        return rows

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the store (or its fallback) holds (one lookup each, whatever its size)."""
        found = set(self._col.get(ids=list(ids), include=[])["ids"]) if ids else set()
        if self._fallback is not None and len(found) < len(ids):
            found |= self._fallback.existing([i for i in ids if i not in found])
        return found

    def nearest_ids(self, x: np.ndarray, n: int, live: int | None = None) -> list[list[tuple[str, float]]]:
        """Chroma's approximate (HNSW) ``n`` nearest ids to each row of ``x`` in this collection
        and its fallback, with their cosine similarity, most similar first; fewer when they hold
        fewer. ``live``: how many of the records the caller keeps (the committed exemplars); the
        fallback, which holds every example, is asked for as many more hits as it holds more
        records, so that about ``n`` of its hits are live."""
        query = np.ascontiguousarray(x, dtype=np.float32)
        asks = [(self._col, n)]
        if self._fallback is not None:
            col = self._fallback._col
            asks.append((col, n if live is None else min(_BATCH, math.ceil(n * col.count() / max(live, 1)))))
        hits: list[dict[str, float]] = [{} for _ in range(len(x))]
        for col, k in asks:
            res = col.query(query_embeddings=query, n_results=max(k, 1), include=["distances"])
            for found, ids, ds in zip(hits, res["ids"], res["distances"]):
                found.update((i, 1.0 - float(d)) for i, d in zip(ids, ds))
        return [sorted(h.items(), key=lambda hit: -hit[1]) for h in hits]

    def with_texts(self, texts: Collection[str]) -> list[str]:
        """The ids of every record whose text is one of ``texts`` (exactly)."""
        wanted = set(texts)
        got = self._col.get(include=["documents"])
        return [i for i, doc in zip(got["ids"], got["documents"]) if doc in wanted]

    def all_ids(self) -> set[str]:
        return set(self._col.get(include=[])["ids"])

    def oldest(self, n: int) -> list[str]:
        """The ``n`` records added first (metadata only is read)."""
        got = self._col.get(include=["metadatas"])
        order = sorted(zip(got["ids"], got["metadatas"]), key=lambda r: (r[1]["stored"], r[0]))
        return [i for i, _ in order[:n]]

    def prune(self, live: Collection[str], min_age: float = 0.0) -> int:
        """Delete records no commit names; returns how many. With ``min_age``, only those added
        at least that many seconds ago: on a shared server, younger ones may be another writer's
        that its commit is about to name."""
        if min_age > 0:
            old = self._col.get(where={"stored": {"$lt": time.time() - min_age}}, include=[])["ids"]
        else:
            old = self._col.get(include=[])["ids"]
        live = set(live)
        orphans = set(old) - live
        self.delete(orphans)
        for i in self._rows.keys() - live:  # another writer dropped them
            del self._rows[i]
            self._last = None
        return len(orphans)

    def count(self) -> int:
        return int(self._col.count())
