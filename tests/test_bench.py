"""`agent-il bench` end to end on a real CLINC150 slice (quick mode), and the article's experiment."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_il.cli import app

ROOT = Path(__file__).resolve().parent.parent


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "intent"])
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def files(clinc, tmp_path_factory) -> tuple[Path, Path]:
    classes = [c for task in clinc.tasks[:4] for c in task]  # 40 intents: 4 tasks of 10
    tmp = tmp_path_factory.mktemp("bench")
    train = list(zip(*clinc.split("train", classes)))[::3]
    test = list(zip(*clinc.split("test", classes)))
    return write_csv(tmp / "train.csv", train), write_csv(tmp / "test.csv", test)


@pytest.mark.slow
def test_quick_bench_writes_results_and_reuses_embeddings(files, tmp_path):
    train, test = files
    args = ["bench", str(train), "--test", str(test), "--quick", "--cache-dir", str(tmp_path / "cache")]
    first = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "one"), "--json"])
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert result["protocol"]["tasks"] == 4 and result["protocol"]["tasks_run"] == 3
    assert result["protocol"]["seeds"] == [0] and result["protocol"]["encoded_texts"] > 0
    s = result["strategies"]
    assert set(s) == {"ewc-replay", "replay", "ewc", "naive", "ridge", "joint"}
    assert s["naive"]["final_accuracy"]["mean"] < s["replay"]["final_accuracy"]["mean"] - 20
    assert s["naive"]["forgetting"]["mean"] > 30 > 5 > s["ridge"]["forgetting"]["mean"]
    assert len(s["ridge"]["accuracy_per_step"]) == 3
    assert result["default"] in s and result["best"] != "joint"
    for name in ("results.json", "report.md", "curves.png", f"matrix-{result['default']}.png"):
        assert (tmp_path / "one" / name).stat().st_size > 0
    assert "| ewc-replay |" in (tmp_path / "one" / "report.md").read_text()
    second = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "two"), "--json", "--strategies", "naive,ridge"])
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)
    assert again["protocol"]["encoded_texts"] == 0 and set(again["strategies"]) == {"naive", "ridge"}
    table = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "three"), "--strategies", "naive"])
    assert table.exit_code == 0 and "final ACC" in table.stdout


def test_bench_argument_errors(files, tmp_path):
    train, test = files
    cases = [
        (["bench", str(train)], "has no 'test' split"),
        (["bench", str(train), "--test", str(test), "--seeds", "x"], "--seeds takes whole numbers"),
        (["bench", str(train), "--test", str(test), "--strategies", "magic"], "unknown strategies magic"),
        (["bench", str(train), "--test", str(test), "--tasks", "999"], "--tasks must be between"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app, [*args, "--cache-dir", str(tmp_path), "--out", str(tmp_path / "o")])
        assert result.exit_code == 1 and message in result.stderr, (args, result.output)


def test_bench_shots_runs_the_baselines(files, tmp_path):
    train, test = files
    args = ["bench", str(train), "--test", str(test), "--quick", "--shots", "3", "--json"]
    names = ["--strategies", "ridge,nearest-mean,router,logreg"]
    result = CliRunner().invoke(app, [*args, *names, "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["protocol"]["shots"] == 3 and out["protocol"]["train_examples"] == 3 * 40
    assert set(out["strategies"]) == {"ridge", "nearest-mean", "router", "logreg"} and out["best"] == "ridge"
    assert all(s["final_accuracy"]["mean"] > 50 for s in out["strategies"].values())
    assert "Baselines" in (tmp_path / "report.md").read_text()
    for bad in ("0", "-1", "nan", "x"):
        where = ["--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path)]
        refused = CliRunner().invoke(app, [*args[:-1], "--shots", bad, *where])
        assert refused.exit_code == 1 and "--shots" in refused.stderr, (bad, refused.output)


@pytest.mark.slow
def test_split_digits_example_runs():
    proc = subprocess.run(
        [sys.executable, "examples/split_digits.py"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line and line.split()[0] in ("naive", "ewc")}
    assert "overall" in proc.stdout and set(lines) == {"naive", "ewc"}
