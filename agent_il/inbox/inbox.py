"""Inputs the agent could not place (predicted ``unknown``), kept for discovery. Not part of a
commit and never snapshotted: the inbox changes nothing the agent knows.

Anyone who can send the agent a message can add to it, so it is bounded: the newest ``limit``
items are kept, the oldest go first. A text's id is its hash, so the same text waits there once.
Corrections waiting for review (:mod:`agent_il.inbox.review`) share its collection, not its views:
``items``, ``discover``, ``forget`` and the bound see the unknowns only.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent_il import validation
from agent_il.errors import InvalidInputError
from agent_il.inbox import discovery
from agent_il.inbox.review import ReviewQueue, is_correction
from agent_il.memory.records import Records
from agent_il.memory.store import RecordStore

LIMIT = 10_000


def text_id(text: str) -> str:
    """The id an unknown ``text`` waits under."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def records(x: np.ndarray, texts: list[str | None], closest: list[str], scores: np.ndarray) -> Records:
    ids = [text_id(t) if t is not None else uuid.uuid4().hex for t in texts]
    stamp = time.time()
    metas: list[dict[str, str | int | float]] = [
        {"label": c, "score": float(s), "time": stamp} for c, s in zip(closest, scores)
    ]
    # The text is kept cut to the longest learnable text (the id still hashes all of it): anyone
    # can send a message, and ``inbox learn`` learns these texts.
    return Records(ids, x, [validation.cut(t) for t in texts], metas)


class Inbox:
    def __init__(self, store: RecordStore, limit: int = LIMIT) -> None:
        self.store = store
        self.limit = limit
        self.corrections = ReviewQueue(store)

    def add(self, x: np.ndarray, texts: list[str | None], closest: list[str], scores: Sequence[float]) -> list[str]:
        """Keep these inputs (``closest``: the known intent each was nearest); returns their ids."""
        recs = records(x, texts, closest, np.asarray(scores, dtype=np.float64))
        seen = self.store.existing(recs.ids)
        fresh = []
        for i, rid in enumerate(recs.ids):
            if rid not in seen:
                seen.add(rid)
                fresh.append(i)
        self.store.add(recs.take(fresh))
        if fresh and self.store.count() > self.limit and (excess := len(self._unknown_ids()) - self.limit) > 0:
            # A tenth more than the excess goes, so a full inbox reads its metadata once per
            # ~limit/10 additions, not on every rejected input.
            oldest = [i for i in self.store.oldest(self.store.count()) if not is_correction(i)]
            self.store.delete(oldest[: excess + self.limit // 10])
        return recs.ids

    def _unknown_ids(self) -> set[str]:
        return {i for i in self.store.all_ids() if not is_correction(i)}

    def items(self) -> Records:
        """Every unknown in the inbox, oldest first."""
        recs = self.store.load(sorted(self._unknown_ids()))
        return recs.take(sorted(range(len(recs.ids)), key=lambda i: (recs.metadatas[i]["time"], recs.ids[i])))

    def discover(self, distance: float | None = None, min_size: int | None = None) -> list[discovery.Cluster]:
        """Cluster the inbox into candidate new intents, largest first."""
        return discovery.cluster(
            self.items(),
            distance=discovery.DISTANCE if distance is None else validation.distance(distance, "distance"),
            min_size=discovery.MIN_SIZE if min_size is None else validation.positive_int(min_size, "min_size"),
        )

    def cluster_records(self, key: str, **discover_args: Any) -> Records:
        """The items of cluster ``key`` as :meth:`discover` shows it now; refused once the inbox
        changed (the key is a hash of the members), so nothing is learned by mistake."""
        found = next((c for c in self.discover(**discover_args) if c.key == key), None)
        if found is None:
            raise InvalidInputError(f"no inbox cluster {key!r} now; run discover again (the inbox may have changed)")
        return self.store.load(found.ids)

    def forget(self, ids: Sequence[str] | None = None) -> int:
        """Drop these unknowns (all when ``ids`` is None); returns how many were there. Pending
        corrections stay: they are accepted or rejected (:class:`ReviewQueue`)."""
        present = self._unknown_ids()
        gone = present if ids is None else present & set(ids)
        self.store.delete(gone)
        return len(gone)

    def forget_texts(self, texts: Sequence[str]) -> int:
        """Drop the unknowns with these texts: they have just been learned."""
        return self.forget([text_id(t) for t in texts])
