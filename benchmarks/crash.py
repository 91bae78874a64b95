"""Kill -9 during ``agent-il learn``, as a user's machine would: a real ``agent-il`` process on a
real workspace directory, killed with SIGKILL at a random moment of its learn, then
``agent-il doctor``, then a check that the workspace predicts exactly as it did before the learn
or exactly as it does after the same learn run to the end (never a mix).

Each run: copy the workspace and run the learn to the end on the copy (the "after" reference,
and when a learn opens the workspace, commits and ends), then start the same learn on the
workspace itself and, once it owns the workspace (its pid in ``.owner``), kill it: even runs at a
random moment up to the end of the reference learn, odd runs at a random moment from 1.5 s before
to 0.5 s after the reference's commit (state.json replaced), so that kills land inside commits.
Then ``agent-il doctor`` and the predictions on a fixed probe set, compared with both references.
Every run learns five new CLINC150 intents (30 examples each).

    python benchmarks/crash.py                # 20 runs; writes benchmarks/results/crash/crash.json
    python benchmarks/crash.py --runs 5 --seed 3 --out /tmp/crash.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "cli.py"
CLINC = ROOT / "examples" / "data" / "clinc150" / "data_full.json"
OUT = ROOT / "benchmarks" / "results" / "crash" / "crash.json"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True, env=ENV, timeout=timeout)


def write_task(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["text", "intent"])
        out.writerows(rows)
    return path


def owner_pid(home: Path) -> int | None:
    try:
        return int((home / ".owner").read_text())
    except (OSError, ValueError):
        return None


def wait_open(proc: subprocess.Popen[str], home: Path, limit: float) -> float | None:
    """Seconds until ``proc`` owns the workspace (None if it ended first or took over ``limit``)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if owner_pid(home) == proc.pid:
            return time.monotonic() - t0
        if proc.poll() is not None:
            return None
        time.sleep(0.005)
    return None


def watch(proc: subprocess.Popen[str], home: Path) -> tuple[float | None, float | None, float]:
    """Run ``proc`` (a learn on ``home``) to its end; seconds from now until it owned the workspace,
    until it committed (state.json replaced), and until it ended."""
    t0 = time.monotonic()
    inode = (home / "state.json").stat().st_ino
    t_open = t_commit = None
    while proc.poll() is None:
        now = time.monotonic() - t0
        if t_open is None and owner_pid(home) == proc.pid:
            t_open = now
        if t_commit is None:
            try:
                if (home / "state.json").stat().st_ino != inode:
                    t_commit = now
            except OSError:
                pass
        time.sleep(0.005)
    end = time.monotonic() - t0
    if t_commit is None and (home / "state.json").stat().st_ino != inode:
        t_commit = end
    return t_open, t_commit, end


def predictions(home: Path, probe: list[str], encoder: Any) -> list[Any]:
    from agent_il import IntentLearner

    with IntentLearner.open(home, encoder=encoder, create=False) as learner:
        preds = learner.predict(probe, k=3, evidence=0, inbox=False)
        state = learner.state.to_json()
    return [state["generation"], [[(label, round(float(score), 5)) for label, score in p.top_k] for p in preds]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from agent_il import Encoder

    data = json.loads(CLINC.read_text())
    labels = sorted({label for _, label in data["train"]})
    random.Random(args.seed).shuffle(labels)
    by_label: dict[str, list[str]] = {}
    for text, label in data["train"]:
        by_label.setdefault(label, []).append(text)
    probe_labels = labels[: 5 * (args.runs + 2)]
    probe = [t for t, y in data["test"] if y in set(probe_labels)][::6]
    rng = random.Random(args.seed)
    encoder = Encoder()

    work = Path(tempfile.mkdtemp(prefix="agent-il-crash-"))
    home = work / "kb"
    try:
        assert cli("init", "--home", str(home)).returncode == 0
        base = [(t, y) for y in labels[:10] for t in by_label[y][:30]]
        done = cli("learn", str(write_task(work / "base.csv", base)), "--home", str(home), "--task", "base")
        assert done.returncode == 0, done.stderr
        runs: list[dict[str, Any]] = []
        for run in range(args.runs):
            classes = labels[10 + 5 * run : 15 + 5 * run]
            task = write_task(work / f"task{run}.csv", [(t, y) for y in classes for t in by_label[y][:30]])
            learn = ["learn", str(task), "--task", f"t{run}"]
            before = predictions(home, probe, encoder)

            ref = work / "ref"
            shutil.rmtree(ref, ignore_errors=True)
            shutil.copytree(home, ref, ignore=shutil.ignore_patterns(".lock", ".owner"))
            ref_proc = subprocess.Popen(
                [sys.executable, str(CLI), *learn, "--home", str(ref)],
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            t_open, t_commit, full = watch(ref_proc, ref)
            err = ref_proc.stderr.read() if ref_proc.stderr else ""
            assert ref_proc.returncode == 0 and t_open is not None and t_commit is not None, err
            after = predictions(ref, probe, encoder)

            # even runs: a random moment between opening the workspace and the end of the learn;
            # odd runs: a random moment around the commit (1.5 s before to 0.5 s after)
            if run % 2 == 0:
                where, kill_at = "anywhere", t_open + rng.uniform(0.0, 1.05 * (full - t_open))
            else:
                where, kill_at = "commit", t_commit + rng.uniform(-1.5, 0.5)
            t0 = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, str(CLI), *learn, "--home", str(home)],
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_open(proc, home, 600)
            time.sleep(max(0.0, kill_at - (time.monotonic() - t0)))
            killed_at = time.monotonic() - t0
            finished_first = proc.poll() is not None
            proc.send_signal(signal.SIGKILL)
            proc.wait()

            t1 = time.monotonic()
            doc = cli("doctor", "--home", str(home), "--json")
            doctor_s = time.monotonic() - t1
            doctor_ok = doc.returncode == 0 and json.loads(doc.stdout).get("ok") is True
            now = predictions(home, probe, encoder)
            outcome = "before" if now == before else "after" if now == after else "mixed"
            runs.append(
                {
                    "run": run,
                    "aim": where,
                    "learn_s": round(full, 2),
                    "open_s": round(t_open, 2),
                    "commit_s": round(t_commit, 2),
                    "killed_at_s": round(killed_at, 2),
                    "finished_before_kill": finished_first,
                    "doctor_ok": doctor_ok,
                    "doctor_s": round(doctor_s, 2),
                    "outcome": outcome,
                }
            )
            print(json.dumps(runs[-1]), flush=True)
            if not doctor_ok:
                print(doc.stdout, doc.stderr, file=sys.stderr)
        again = cli("learn", str(task), "--home", str(home), "--task", "final", "--json")  # still learns
        summary = {
            "runs": len(runs),
            "doctor_ok": sum(r["doctor_ok"] for r in runs),
            "before": sum(r["outcome"] == "before" for r in runs),
            "after": sum(r["outcome"] == "after" for r in runs),
            "mixed": sum(r["outcome"] == "mixed" for r in runs),
            "finished_before_kill": sum(r["finished_before_kill"] for r in runs),
            "median_learn_s": round(statistics.median(r["learn_s"] for r in runs), 2),
            "median_open_s": round(statistics.median(r["open_s"] for r in runs), 2),
            "median_commit_s": round(statistics.median(r["commit_s"] for r in runs), 2),
            "median_killed_at_s": round(statistics.median(r["killed_at_s"] for r in runs), 2),
            "median_doctor_s": round(statistics.median(r["doctor_s"] for r in runs), 2),
            "learns_after_the_runs": again.returncode == 0,
            "seed": args.seed,
            "per_run": runs,
            "setup": "embedded workspace; each run learns 5 new CLINC150 intents x 30 examples with "
            "`agent-il learn`, killed with SIGKILL once it owns the workspace: even runs at a random moment "
            "up to the end of the same learn run to completion on a copy, odd runs at a random moment from "
            "1.5 s before to 0.5 s after that copy's commit (state.json replaced)",
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps({k: v for k, v in summary.items() if k != "per_run"}, indent=2))
        if summary["doctor_ok"] != summary["runs"] or summary["mixed"] or not summary["learns_after_the_runs"]:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
