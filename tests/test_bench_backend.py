"""`agent-il bench --backend`: the run encodes with the backend asked for and records it; an unknown
backend is refused in one line before anything is read, encoded or written."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agent_il.cli import app

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "data" / "quickstart"


def train_file(tmp_path: Path) -> Path:
    """The quick start's 12 intents (banking and travel) as one training file."""
    rows = [(QUICKSTART / name).read_text().splitlines() for name in ("banking.csv", "travel.csv")]
    path = tmp_path / "train.csv"
    path.write_text("\n".join([rows[0][0], *rows[0][1:], *rows[1][1:]]) + "\n")
    return path


def test_bench_records_the_backend_it_encoded_with(tmp_path: Path) -> None:
    train, out, cache = train_file(tmp_path), tmp_path / "out", tmp_path / "cache"
    args = ["bench", str(train), "--test", str(QUICKSTART / "test.csv"), "--tasks", "3", "--quick"]
    result = CliRunner().invoke(
        app, [*args, "--strategies", "ridge", "--backend", "onnx-int8", "--cache-dir", str(cache), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    protocol = json.loads((out / "results.json").read_text())["protocol"]
    assert protocol["backend"] == "onnx-int8" and protocol["encoded_texts"] == 960
    assert protocol["model"] == "sentence-transformers/all-MiniLM-L6-v2" and protocol["classes"] == 12


def test_bench_refuses_an_unknown_backend_and_writes_nothing(tmp_path: Path) -> None:
    train, out, cache = train_file(tmp_path), tmp_path / "out", tmp_path / "cache"
    args = ["bench", str(train), "--test", str(QUICKSTART / "test.csv"), "--backend", "gpu"]
    result = CliRunner().invoke(app, [*args, "--cache-dir", str(cache), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: unknown backend 'gpu'; choose one of auto, torch, onnx, onnx-int8"], (
        result.output
    )
    assert not out.exists() and not cache.exists()
