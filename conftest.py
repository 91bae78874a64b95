"""Fixtures shared by the tool-surface test (tests/test_tools.py) and the adapters' tests under
plugins/*/tests: one workspace really learned, once per session, on the quick-start slice of
CLINC150 (banking, then travel, each with a held-out slice), copied wherever a test needs its own."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # prove nothing is fetched at run time

import pytest

ROOT = Path(__file__).resolve().parent
QUICKSTART = ROOT / "examples" / "data" / "quickstart"


def read_quickstart(name: str) -> tuple[list[str], list[str]]:
    with (QUICKSTART / name).open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["intent"] for r in rows]


@pytest.fixture(scope="session")
def quickstart() -> dict[str, tuple[list[str], list[str]]]:
    """(texts, labels) of each quick-start file: banking, travel, test."""
    return {name: read_quickstart(f"{name}.csv") for name in ("banking", "travel", "test")}


@pytest.fixture(scope="session")
def tool_encoder():
    from agent_il import Encoder

    return Encoder()


@pytest.fixture(scope="session")
def learned_seed(tmp_path_factory: pytest.TempPathFactory, tool_encoder) -> Path:
    """A workspace that learned banking then travel (holdout 0.2). Never opened by a test: copy it."""
    from agent_il import IntentLearner

    path = tmp_path_factory.mktemp("seed") / "kb"
    with IntentLearner.open(path, encoder=tool_encoder) as learner:
        for task in ("banking", "travel"):
            learner.learn(*read_quickstart(f"{task}.csv"), task=task, holdout=0.2)
    return path


def copy_workspace(seed: Path, dest: Path) -> Path:
    shutil.copytree(seed, dest)
    return dest


@pytest.fixture(scope="module")
def learned_home(learned_seed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This module's own copy of the learned workspace, for tests that only read it."""
    yield copy_workspace(learned_seed, tmp_path_factory.mktemp("module") / "kb")


@pytest.fixture
def fresh_home(learned_seed: Path, tmp_path: Path) -> Path:
    """A copy for one test that learns."""
    return copy_workspace(learned_seed, tmp_path / "kb")
