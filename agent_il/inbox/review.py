"""Corrections waiting for the operator's review: a text, the intent someone says it meant, the
intent the agent had given it, when, and who sent it (``tool``, ``cli`` or ``api``).

They wait in the inbox's own collection, beside the unknowns, because they are the same kind of
thing: what users sent, kept for the operator, changing nothing the agent knows until a learn; not
part of a commit, never snapshotted, and erased with the unknowns by a purge. A correction's id is
``fb-`` and a hash of its label and text, so the same correction waits once, and it never
collides with an unknown's (a bare hex hash). Anyone who talks to an agent can send corrections,
so the queue is bounded like the inbox: the newest ``limit`` are kept, the oldest go first.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from agent_il import validation
from agent_il.errors import InvalidInputError
from agent_il.memory.records import Records
from agent_il.memory.store import RecordStore

PREFIX = "fb-"
LIMIT = 1_000
SENDERS = ("tool", "cli", "api")


def correction_id(text: str, label: str) -> str:
    return PREFIX + hashlib.sha256(f"{label}\x00{text}".encode()).hexdigest()[:16]


def is_correction(record_id: str) -> bool:
    return record_id.startswith(PREFIX)


@dataclass(frozen=True)
class Pending:
    """One correction waiting for review."""

    id: str
    text: str
    label: str  # the intent it should have been given
    predicted: str  # what the agent gave it when the correction was sent (``unknown``: rejected)
    sender: str
    time: float

    def to_dict(self) -> dict[str, str | float]:
        return asdict(self)

    @classmethod
    def of(cls, record_id: str, text: str | None, meta: dict[str, str | int | float]) -> Pending:
        label, predicted, sender = str(meta["label"]), str(meta["predicted"]), str(meta["sender"])
        return cls(record_id, text or "", label, predicted, sender, float(meta["time"]))


class ReviewQueue:
    """The pending corrections, in the inbox's store."""

    def __init__(self, store: RecordStore, limit: int = LIMIT) -> None:
        self.store = store
        self.limit = limit

    def add(self, x: np.ndarray, texts: list[str], labels: list[str], predicted: list[str], sender: str) -> list[str]:
        """Queue these corrections (``x``: the texts' embeddings); returns their ids. One that
        already waits keeps its place, time and sender."""
        if sender not in SENDERS:
            raise InvalidInputError(f"sender must be one of {', '.join(SENDERS)}")
        ids = [correction_id(t, y) for t, y in zip(texts, labels)]
        stamp = time.time()
        seen = self.store.existing(ids)
        fresh = []
        for i, rid in enumerate(ids):
            if rid not in seen:
                seen.add(rid)
                fresh.append(i)
        metas: list[dict[str, str | int | float]] = [
            {"kind": "correction", "label": y, "predicted": p, "sender": sender, "time": stamp}
            for y, p in zip(labels, predicted)
        ]
        kept: list[str | None] = list(texts)
        self.store.add(Records(ids, x, kept, metas).take(fresh))
        if fresh and (excess := len(self.ids()) - self.limit) > 0:
            # A tenth more than the excess goes, so a full queue reads its metadata once per
            # ~limit/10 additions (as the inbox does).
            oldest = [i for i in self.store.oldest(self.store.count()) if is_correction(i)]
            self.store.delete(oldest[: excess + self.limit // 10])
        return ids

    def ids(self) -> set[str]:
        return {i for i in self.store.all_ids() if is_correction(i)}

    def items(self) -> list[Pending]:
        """Every pending correction, oldest first."""
        recs = self.store.load(sorted(self.ids()))
        out = [Pending.of(i, t, m) for i, t, m in zip(recs.ids, recs.texts, recs.metadatas)]
        return sorted(out, key=lambda p: (p.time, p.id))

    def pending(self, ids: Sequence[str] | None = None) -> list[Pending]:
        """The pending corrections ``ids`` (all when None), in the order given; refused, naming
        it, when one does not wait here."""
        if ids is None:
            return self.items()
        wanted = list(dict.fromkeys(i.strip() for i in validation.texts(ids, "ids")))
        present = self.store.existing(wanted)
        for rid in wanted:
            shown = validation.cut(rid, 40)
            if rid in present and not is_correction(rid):
                raise InvalidInputError(
                    f"{shown!r} is an unknown input, not a correction; agent-il discover and inbox learn learn those"
                )
            if rid not in present:
                raise InvalidInputError(f"no correction {shown!r} waits for review; agent-il inbox list shows them")
        recs = self.store.load(wanted)
        return [Pending.of(i, t, m) for i, t, m in zip(recs.ids, recs.texts, recs.metadatas)]

    def reject(self, ids: Sequence[str] | None = None) -> int:
        """Drop these corrections (all when None) unlearned; returns how many. An id that does not
        wait here is refused, and nothing is dropped."""
        return self.drop([p.id for p in self.pending(ids)] if ids is not None else sorted(self.ids()))

    def drop(self, ids: Sequence[str]) -> int:
        """Take these corrections out of the queue (accepted or rejected); returns how many were there."""
        gone = self.store.existing([i for i in ids if is_correction(i)])
        self.store.delete(gone)
        return len(gone)
