"""Labelled embeddings held in process, aligned by position: what the stores return and the
learn step works on. Immutable by convention: records are never edited in place."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Metadata = dict[str, str | int | float]


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
    def concat(cls, parts: Sequence[Records]) -> Records:
        parts = [p for p in parts if p.ids]
        if not parts:
            return cls.empty()
        return cls(
            [i for p in parts for i in p.ids],
            np.concatenate([p.x for p in parts]),
            [t for p in parts for t in p.texts],
            [m for p in parts for m in p.metadatas],
        )

    @classmethod
    def empty(cls, dim: int = 0) -> Records:
        return cls([], np.zeros((0, dim), dtype=np.float32), [], [])
