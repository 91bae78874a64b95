"""The encoder a workspace uses: one model on one backend, normalised batched embeddings, and
caching in memory and on disk, so no text is encoded twice for the same model and backend."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agent_il.config import DEFAULT_MODEL
from agent_il.encoding import base
from agent_il.encoding.base import normalise_model_id, resolve_model_location
from agent_il.encoding.cache import EmbeddingCache
from agent_il.errors import InvalidInputError, ModelMismatchError, WorkspaceError

__all__ = ["DEFAULT_MODEL", "Encoder", "normalise_model_id", "resolve", "resolve_model_location"]
log = logging.getLogger("agent_il")


def resolve(name: str, model_id: str, device: str | None) -> str:
    """``auto``: torch where it would run on CUDA, else ONNX Runtime when the model exports."""
    if base.check_backend(name) != "auto":
        return name
    if (device or base.default_device()).startswith("cuda"):
        return "torch"
    from agent_il.encoding import export

    try:
        export.ensure(model_id, "onnx")
    except WorkspaceError as exc:
        log.warning("%s; using the torch backend", exc)
        return "torch"
    return "onnx"


def make(name: str, model_id: str, device: str | None) -> base.Backend:
    base.single_threaded_numpy()
    if name == "torch":
        from agent_il.encoding.sbert import SentenceTransformersBackend

        return SentenceTransformersBackend(model_id, device)
    if device is not None and device != "cpu":
        raise InvalidInputError(f"the {name} backend runs on the CPU; use --backend torch for device {device!r}")
    from agent_il.encoding.onnx import OnnxBackend

    return OnnxBackend(model_id, name)


class Encoder:
    """Frozen text encoder. ``backend``: ``torch`` (sentence-transformers), ``onnx`` or
    ``onnx-int8`` (ONNX Runtime, no torch), or ``auto``: a workspace's own backend when it opens
    one, else torch on CUDA and ONNX on the CPU. Nothing loads until the first encode."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        backend: str = "auto",
        device: str | None = None,
        batch_size: int = 64,
        memory_items: int = 50_000,
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        self.model_id = normalise_model_id(model)
        self.requested = base.check_backend(backend)
        self.device = device
        self.batch_size = batch_size
        self._backend_name: str | None = None if backend == "auto" else backend
        self._backend: base.Backend | None = None
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_items = memory_items
        self.encoded_count = 0  # texts that actually went through the model (for tests and stats)

    @property
    def chosen(self) -> str | None:
        """The backend asked for or already resolved; None while ``auto`` has not chosen."""
        return self._backend_name

    @property
    def backend(self) -> str:
        """The backend's name (``auto`` resolved: an export is tried on the CPU)."""
        if self._backend_name is None:
            self._backend_name = resolve("auto", self.model_id, self.device)
        return self._backend_name

    def use_backend(self, name: str) -> None:
        """Run on the backend a workspace was made with; an encoder asked for another one, or
        already running on another one, cannot serve it."""
        if self._backend_name not in (None, name):
            raise ModelMismatchError(
                f"workspace encodes with the {name} backend, not {self._backend_name}; "
                "open it with that backend (its vectors are not mixed with another's)"
            )
        self._backend_name = name

    @property
    def cache_id(self) -> str:
        """What the embedding cache is keyed by: the model, and unless torch the backend and the
        export's format (a new format may give other vectors: the old ones are not reused)."""
        if self.backend == "torch":
            return self.model_id
        from agent_il.encoding.export import FORMAT

        return f"{self.model_id}|{self.backend}|{FORMAT}"

    @property
    def runner(self) -> base.Backend:
        if self._backend is None:
            self._backend = make(self.backend, self.model_id, self.device)
        return self._backend

    @property
    def model(self) -> Any:
        """The sentence-transformers model of the torch backend."""
        runner = self.runner
        if not hasattr(runner, "model"):
            raise InvalidInputError(f"the {self.backend} backend has no sentence-transformers model")
        return runner.model  # type: ignore[attr-defined]

    @property
    def dim(self) -> int:
        return self.runner.dim

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
            vectors = self.runner.embed(chunk, self.batch_size)
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
