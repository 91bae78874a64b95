"""What int8 quantisation costs in accuracy: ``agent-il bench`` (ridge, the default head) on
CLINC150 (15 tasks of 10 intents) and BANKING77 (7 tasks of 11 intents), once with the fp32 ONNX
export (``--backend onnx``) and once with its int8 quantisation (``--backend onnx-int8``), same
seeds, each run in a process of its own. Per data set and backend: final class-IL accuracy and
forgetting, mean and per seed, and int8 - fp32 in points. Goal: int8 within 0.3 points of fp32.

Embeddings are cached per model and backend (the user cache, or --cache-dir), so only the first
run of a backend encodes (int8 encodes one text at a time: several minutes for both data sets).
Writes benchmarks/results/backends/accuracy.json.

    python benchmarks/backends_accuracy.py                 # seeds 0,1,2
    python benchmarks/backends_accuracy.py --quick         # smoke run: 30 intents (accuracy-quick.json)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

from agent_il import data
from agent_il.engine.metrics import AccuracyMatrix
from agent_il.storage import atomic

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
OUT = ROOT / "benchmarks" / "results" / "backends"
SETS = {  # TRAIN and --test, as the README runs `agent-il bench` on each
    "clinc150": (DATA / "clinc150" / "data_full.json", None),
    "banking77": (DATA / "banking77" / "train.csv", DATA / "banking77" / "test.csv"),
}
BACKENDS = {"fp32": "onnx", "int8": "onnx-int8"}
STRATEGY = "ridge"
GOAL_POINTS = 0.3
GOAL = f"int8 final accuracy within {GOAL_POINTS} points of fp32"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
QUICK_CLASSES = 30


def agent_il() -> str:
    exe = Path(sys.executable).with_name("agent-il")
    return str(exe) if exe.exists() else "agent-il"


def sliced(train: Path, test: Path | None, folder: Path) -> tuple[Path, Path]:
    """The first ``QUICK_CLASSES`` intents of a data set as two CSV files (every 3rd training row)."""
    train_set = data.read(train, split="train" if test is None else None)
    test_set = data.read(test or train, split="test" if test is None else None)
    keep = set(sorted(set(train_set.labels or []))[:QUICK_CLASSES])
    folder.mkdir(parents=True)
    paths = []
    for name, rows, step in (("train", train_set, 3), ("test", test_set, 1)):
        path = folder / f"{name}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "intent"])
            w.writerows([(t, y) for t, y in zip(rows.texts, rows.labels or []) if y in keep][::step])
        paths.append(path)
    return paths[0], paths[1]


def bench(train: Path, test: Path | None, backend: str, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One ``agent-il bench`` run; its results.json, with the run's wall time."""
    cmd = [agent_il(), "bench", str(train), "--strategies", STRATEGY, "--seeds", args.seeds]
    cmd += ["--backend", backend, "--out", str(out), "--json"]
    cmd += ["--test", str(test)] if test is not None else []
    cmd += ["--quick"] if args.quick else []
    cmd += ["--cache-dir", str(args.cache_dir)] if args.cache_dir else []
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=ENV)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-3000:]}")
    result = json.loads((out / "results.json").read_text())
    result["wall_seconds"] = time.perf_counter() - t
    return result


def per_seed(grids: list[list[list[float | None]]]) -> tuple[list[float], list[float]]:
    """Final accuracy (mean of the last row over tasks) and forgetting of each seed's matrix."""
    finals, forgetting = [], []
    for grid in grids:
        matrix = AccuracyMatrix(
            list(range(len(grid[0]))),
            [(i, {t: v for t, v in enumerate(row) if v is not None}) for i, row in enumerate(grid)],
        )
        finals.append(float(matrix.final_accuracy() or 0.0))
        forgetting.append(float(matrix.forgetting() or 0.0))
    return finals, forgetting


def figures(result: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    s, p = result["strategies"][STRATEGY], result["protocol"]
    finals, forgetting = per_seed(result["matrices"][STRATEGY])
    mean_final = s["final_accuracy"]["mean"]
    if abs(mean(finals) - mean_final) > 1e-6:  # the test sets are balanced: task and example means agree
        print(f"note: task-averaged final accuracy {mean(finals):.4f} != {mean_final:.4f}", file=sys.stderr)
    return {
        "backend": p.get("backend"),
        "final_accuracy": {"mean": mean_final, "std": s["final_accuracy"]["std"]},
        "final_accuracy_per_seed": dict(zip(map(str, seeds), finals)),
        "forgetting": {"mean": s["forgetting"]["mean"], "std": s["forgetting"]["std"]},
        "forgetting_per_seed": dict(zip(map(str, seeds), forgetting)),
        "average_incremental_accuracy": s["average_incremental_accuracy"]["mean"],
        "protocol": {k: p[k] for k in ("classes", "tasks", "tasks_run", "train_examples", "test_examples", "seeds")},
        "encoded_texts": p["encoded_texts"],
        "wall_seconds": round(result["wall_seconds"], 1),
    }


def compare(fp32: dict[str, Any], int8: dict[str, Any]) -> dict[str, Any]:
    diff = int8["final_accuracy"]["mean"] - fp32["final_accuracy"]["mean"]
    return {
        "final_accuracy_points": diff,
        "final_accuracy_points_per_seed": {
            k: int8["final_accuracy_per_seed"][k] - v for k, v in fp32["final_accuracy_per_seed"].items()
        },
        "forgetting_points": int8["forgetting"]["mean"] - fp32["forgetting"]["mean"],
        "goal_met": abs(diff) <= GOAL_POINTS,
    }


def seeds_shown(run: dict[str, Any]) -> str:
    return " ".join(f"{v:.2f}" for v in run["final_accuracy_per_seed"].values())


def table(results: dict[str, Any]) -> str:
    rows = ["| data set | fp32 final ACC | int8 final ACC | int8 - fp32 | fp32 / int8 forgetting | goal |"]
    rows.append("|---|---|---|---|---|---|")
    for name, r in results["data_sets"].items():
        f, i, d = r["fp32"], r["int8"], r["int8_minus_fp32"]
        rows.append(
            f"| {name} | {f['final_accuracy']['mean']:.2f} ({seeds_shown(f)})"
            f" | {i['final_accuracy']['mean']:.2f} ({seeds_shown(i)})"
            f" | {d['final_accuracy_points']:+.2f} | {f['forgetting']['mean']:.2f} / {i['forgetting']['mean']:.2f}"
            f" | {'met' if d['goal_met'] else 'MISSED'} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="seeds, comma-separated (default 0,1,2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 intents, one seed, 3 tasks")
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (default: the user cache)")
    parser.add_argument("--out", type=Path, default=None, help="where the figures go (default: see above)")
    args = parser.parse_args()
    args.out = args.out or OUT / ("accuracy-quick.json" if args.quick else "accuracy.json")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    seeds = seeds[:1] if args.quick else seeds
    results: dict[str, Any] = {
        "goal": GOAL,
        "protocol": {
            "command": f"agent-il bench TRAIN [--test TEST] --strategies {STRATEGY} --seeds {args.seeds}"
            " --backend onnx|onnx-int8" + (" --quick" if args.quick else ""),
            "model": None,
            "strategy": STRATEGY,
            "seeds": seeds,
            "quick": args.quick,
            "final_accuracy": "class-IL accuracy (%) on the test examples of every class, after the last task",
            "per_seed": "from each seed's accuracy matrix (mean of its last row over tasks)",
        },
        "data_sets": {},
    }
    with tempfile.TemporaryDirectory(prefix="agent-il-backends-accuracy-") as tmp:
        for name, (train, test) in SETS.items():
            if args.quick:
                train, test = sliced(train, test, Path(tmp) / name / "data")
            runs = {}
            for precision, backend in BACKENDS.items():
                result = bench(train, test, backend, Path(tmp) / name / backend, args)
                results["protocol"]["model"] = result["protocol"]["model"]
                runs[precision] = figures(result, seeds)
                if runs[precision]["backend"] != backend:
                    raise RuntimeError(f"{name}: asked for {backend}, results.json says {runs[precision]['backend']}")
                print(f"{name} {backend}: {json.dumps(runs[precision])}", file=sys.stderr, flush=True)
            results["data_sets"][name] = {**runs, "int8_minus_fp32": compare(runs["fp32"], runs["int8"])}
    results["goal_met"] = all(r["int8_minus_fp32"]["goal_met"] for r in results["data_sets"].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out, results)
    print(table(results))
    print(f"{GOAL}: {'met' if results['goal_met'] else 'MISSED'}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
