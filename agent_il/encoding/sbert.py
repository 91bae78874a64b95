"""The torch backend: the sentence-transformers library itself (CUDA when present)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from agent_il.encoding.base import Backend, default_device, resolve_model_location
from agent_il.errors import WorkspaceError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def load_sentence_transformer(model_id: str, device: str | None = None) -> SentenceTransformer:
    """The model, offline for the bundled default, with a one-line error for any failure."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no weight-loading bars in CLI output or logs
    try:
        return SentenceTransformer(resolve_model_location(model_id), device=device or default_device())
    except Exception as exc:  # hub lookups, bad directories, missing weights
        raise WorkspaceError(f"could not load encoder model {model_id!r}: {exc}") from exc


class SentenceTransformersBackend(Backend):
    name = "torch"

    def __init__(self, model_id: str, device: str | None) -> None:
        self.model = load_sentence_transformer(model_id, device)

    @property
    def dim(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise WorkspaceError("the model does not report an embedding dimension")
        return int(dim)

    def embed(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)
