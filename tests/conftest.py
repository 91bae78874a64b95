"""Shared fixtures: the real CLINC150 data bundled in examples/data and one real encoder for the
whole session (its in-memory cache means each text is encoded once per test run)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # prove nothing is fetched at run time

import numpy as np
import pytest

from agent_il import Encoder
from agent_il.config import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
CLINC = ROOT / "examples" / "data" / "clinc150" / "data_full.json"


class Clinc:
    def __init__(self) -> None:
        self.data = json.loads(CLINC.read_text())
        labels = sorted({label for _, label in self.data["train"]})
        order = np.random.default_rng(0).permutation(labels)
        self.tasks = [list(order[i * 10 : (i + 1) * 10]) for i in range(15)]

    def split(self, name: str, classes: list[str]) -> tuple[list[str], list[str]]:
        keep = set(classes)
        rows = [(t, label) for t, label in self.data[name] if label in keep]
        return [t for t, _ in rows], [label for _, label in rows]


@pytest.fixture(scope="session")
def clinc() -> Clinc:
    return Clinc()


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder()


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "kb"


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server on loopback: CI's (AGENT_IL_TEST_CHROMA_URL), else one of our own."""
    if os.environ.get("AGENT_IL_TEST_CHROMA_URL"):
        yield os.environ["AGENT_IL_TEST_CHROMA_URL"]
        return
    from agent_il.storage.chroma_server import local_server

    with local_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


@pytest.fixture
def server_name() -> str:
    """A fresh workspace name on the shared test server."""
    import uuid

    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another sentence-transformers model that exists offline: a one-layer BERT with random
    weights (32 dimensions) and the bundled model's tokenizer, saved as sentence-transformers saves."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from agent_il.encoding.base import resolve_model_location

    root = tmp_path_factory.mktemp("tiny-model")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_location(DEFAULT_MODEL))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    body = models.Transformer(str(root / "bert"), max_seq_length=64)
    model = SentenceTransformer(modules=[body, models.Pooling(32, "mean"), models.Normalize()], device="cpu")
    model.save(str(root / "model"))
    return root / "model"
