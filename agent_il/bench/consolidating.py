"""Consolidation inside the class-incremental protocol (``agent-il bench --consolidate-every K``):
the same fine-tune as ``agent-il consolidate`` (:mod:`agent_il.encoding.tuning`, from the base
model, on the training rows seen so far, the benchmark's seed as the fine-tune's), then the
training and test texts encoded again by the tuned model, so that the protocol measures what it
does to final accuracy and forgetting like everything else.

A fine-tune is kept per (seed, rows seen): every strategy of a seed meets the same consolidations,
and each costs once."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from agent_il.bench.protocol import Split
from agent_il.encoding import adapted, tuning
from agent_il.errors import InvalidInputError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_BATCH = 128


class Consolidator:
    """Fine-tunes ``base`` after every ``every`` tasks (and after the last), within
    ``max_minutes`` of training each time."""

    def __init__(self, base: str, every: int, max_minutes: float, device: str | None = None) -> None:
        if adapted.is_adapted(base):
            raise InvalidInputError("consolidation starts from a base model, not from a workspace's adapted encoder")
        self.base = base
        self.every = every
        self.seconds = 60.0 * max_minutes
        self.device = device
        self._done: dict[str, tuple[Split, Split, float]] = {}
        self.final: dict[int, SentenceTransformer] = {}  # per seed, tuned on every training row

    def all_rows(self, train: Split, test: Split, seed: int) -> tuple[Split, Split]:
        """``train`` and ``test`` encoded by ``seed``'s encoder tuned on every training row."""
        moved_train, moved_test, _ = self(train, np.arange(len(train.labels)), test, seed)
        return moved_train, moved_test

    def embed(self, seed: int) -> Callable[[list[str]], np.ndarray]:
        """Encode with ``seed``'s final encoder (the out-of-scope figures)."""
        model = self.final[seed]
        return lambda texts: self.encode(model, texts)

    def __call__(self, train: Split, rows: np.ndarray, test: Split, seed: int) -> tuple[Split, Split, float]:
        if train.texts is None or test.texts is None:
            raise InvalidInputError("consolidation needs the benchmark's texts, not only their vectors")
        digest = hashlib.sha256(f"{seed}\0{len(train.texts)}".encode())
        for text, label in zip(train.texts[rows], train.labels[rows]):
            digest.update(f"{text}\0{label}\0".encode())
        key = digest.hexdigest()
        if key not in self._done:
            from agent_il.encoding.sbert import load_sentence_transformer

            start = time.perf_counter()
            model = load_sentence_transformer(self.base, self.device)
            plan = replace(tuning.Plan(), seed=seed)
            texts = train.texts[rows].tolist()
            tuning.fine_tune(model, texts, train.labels[rows].tolist(), plan, seconds=lambda _: self.seconds)
            moved_train = replace(train, x=self.encode(model, train.texts.tolist()))
            moved_test = replace(test, x=self.encode(model, test.texts.tolist()))
            if len(rows) == len(train.texts):
                self.final[seed] = model
            self._done[key] = (moved_train, moved_test, time.perf_counter() - start)
        return self._done[key]

    @staticmethod
    def encode(model: SentenceTransformer, texts: list[str]) -> np.ndarray:
        x = model.encode(texts, batch_size=_BATCH, normalize_embeddings=True, convert_to_numpy=True)
        return np.ascontiguousarray(x, dtype=np.float32)
