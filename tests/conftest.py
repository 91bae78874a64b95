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
