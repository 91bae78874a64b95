"""The data side of ``agent-il bench``: read TRAIN and TEST (or TRAIN's own splits, as CLINC150's
data_full.json holds them), encode them once per model through the on-disk embedding cache, and
gather the out-of-scope splits. The command then only parses options, runs the protocol and prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from agent_il import data
from agent_il.bench import oos
from agent_il.bench.protocol import Split, task_order
from agent_il.data import Dataset
from agent_il.encoding.cache import EmbeddingCache, cache_path
from agent_il.encoding.encoder import Encoder
from agent_il.errors import AgentILError, InvalidInputError

Progress = Callable[[int, int], None]
OOS_SPLITS = ("val", "oos_test")  # read from TRAIN when it brings them, besides its train and test


@dataclass(frozen=True)
class Corpus:
    """A benchmark's labelled texts: ``train`` and ``test`` from TRAIN and --test, or, without
    --test, TRAIN's 'train' and 'test' splits (and then its oos splits, when it has them)."""

    path: Path
    test_path: Path | None
    train: Dataset
    test: Dataset
    fmt: str | None = None
    text_col: str | None = None
    label_col: str | None = None

    @property
    def classes(self) -> int:
        return len(set(self.train.labels or []))

    def has_oos(self) -> bool:
        """Whether out-of-scope figures can be measured: TRAIN brings its test and oos_test splits."""
        return self.test_path is None and "oos_test" in data.splits(self.path, self.fmt)

    def read_split(self, name: str) -> Dataset:
        return data.read(self.path, fmt=self.fmt, text_col=self.text_col, label_col=self.label_col, split=name)


def read(
    train: Path,
    test: Path | None = None,
    *,
    fmt: str | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
) -> Corpus:
    """TRAIN and TEST, or TRAIN's 'train' and 'test' splits when TEST is not given (an error that
    asks for --test if it has none)."""
    if test is None and "test" not in data.splits(train, fmt):
        raise InvalidInputError(f"{train} has no 'test' split; give --test FILE")

    def rows(path: Path, split: str | None) -> Dataset:
        return data.read(path, fmt=fmt, text_col=text_col, label_col=label_col, split=split)

    train_set = rows(train, "train" if test is None else None)
    test_set = rows(test or train, "test" if test is None else None)
    return Corpus(train, test, train_set, test_set, fmt, text_col, label_col)


class Embeddings:
    """An encoder on ``backend`` and its embedding cache (``cache_dir``, else the user cache), so
    that a text is encoded once per model and backend, ever: a re-run of the benchmark encodes nothing."""

    def __init__(self, model: str | None = None, cache_dir: Path | None = None, backend: str = "auto") -> None:
        self.encoder = Encoder(model, backend=backend)
        self.cache = EmbeddingCache(cache_path(self.encoder.cache_id, cache_dir), self.encoder.dim)

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def backend(self) -> str:
        """The backend the texts are encoded with (``auto`` resolved)."""
        return self.encoder.backend

    @property
    def encoded_count(self) -> int:
        """Texts that went through the model (0 when every embedding came from the cache)."""
        return self.encoder.encoded_count

    def __call__(self, texts: list[str], on_progress: Progress | None = None) -> np.ndarray:
        return self.encoder.encode(texts, cache=self.cache, on_progress=on_progress)

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> Embeddings:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def encode(corpus: Corpus, embed: Embeddings, on_progress: Progress | None = None) -> tuple[Split, Split]:
    """The train and test splits as the protocol takes them: vectors and their labels."""
    x_train = embed(corpus.train.texts, on_progress)
    x_test = embed(corpus.test.texts, on_progress)
    train = Split(x_train, np.array(corpus.train.labels), np.array(corpus.train.texts))
    return train, Split(x_test, np.array(corpus.test.labels), np.array(corpus.test.texts))


def oos_splits(
    corpus: Corpus, embed: Callable[[list[str]], np.ndarray], train: Split, test: Split
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every split agent_il.bench.oos measures on: the encoded train and test, and TRAIN's val and
    oos_test where it has them."""
    splits = {"train": (train.x, train.labels), "test": (test.x, test.labels)}
    for name in OOS_SPLITS:
        try:
            rows = corpus.read_split(name)
        except AgentILError:  # no such split
            continue
        splits[name] = (embed(rows.texts), np.array(rows.labels))
    return splits


def oos_figures(
    corpus: Corpus, embed: Callable[[list[str]], np.ndarray], train: Split, test: Split, n_tasks: int
) -> dict[str, Any]:
    """Out-of-scope rejection of the default head, learned in one go and task by task (seed 0)."""
    splits = oos_splits(corpus, embed, train, test)
    return {
        "joint": oos.measure(splits, [sorted(set(corpus.train.labels or []))]),
        "incremental": oos.measure(splits, task_order(splits["train"][1], n_tasks, seed=0)),
    }
