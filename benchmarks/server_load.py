"""N agent processes predicting in parallel against one Chroma server on loopback.

Starts ``chroma run`` on 127.0.0.1, learns all 150 CLINC150 intents (20 examples each) into a
server workspace, then runs 1, 4 and 16 client processes. Each opens the workspace, loads the
model, waits for a common start, and predicts single queries in a loop for ``--seconds``. Two
modes: ``text`` (the full predict: encode + head + evidence + the check for a newer head on the
server; each client has its own embedding cache, emptied before every timed predict, untimed, so
every query is encoded) and ``vectors`` (pre-encoded queries: what the server and the head add). Prints
throughput and p50/p99 latency and writes benchmarks/results/server_load.json.

    python benchmarks/server_load.py [--clients 1 4 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "examples" / "data" / "clinc150" / "data_full.json"
OUT = HERE / "results" / "server_load.json"
MAX_CLIENTS, MAX_SECONDS = 64, 120


def clinc150(per_intent: int = 20) -> tuple[list[str], list[str], dict]:
    """``per_intent`` train examples of each of CLINC150's 150 intents (texts, labels), and the data set."""
    data = json.loads(DATA.read_text())
    per_class: dict[str, list[str]] = {}
    for text, label in data["train"]:
        per_class.setdefault(label, []).append(text)
    texts = [t for ts in per_class.values() for t in ts[:per_intent]]
    labels = [y for y, ts in per_class.items() for _ in ts[:per_intent]]
    return texts, labels, data


def client(spec: dict) -> None:
    """One agent process: load, say ready, read the common start time, predict until the end."""
    from perf import forget

    from agent_il import IntentLearner

    learner = IntentLearner.open(chroma_url=spec["url"], name=spec["name"], create=False)
    queries = spec["queries"]
    vectors = learner.encoder.encode(queries)  # also loads the model before the clock starts
    learner.predict(queries[:1], inbox=False)  # and the server its index
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    time.sleep(max(0.0, start - time.time()))
    latencies, i = [], spec["offset"]
    while time.time() < start + spec["seconds"]:
        q = i % len(queries)
        if spec["mode"] == "text":
            forget(learner)  # untimed: the predict below encodes its text for real
        t = time.perf_counter()
        if spec["mode"] == "text":
            learner.predict([queries[q]], k=3, evidence=3, inbox=False)
        else:
            learner.predict_vectors(vectors[q : q + 1], k=3, evidence=3, inbox=False)
        latencies.append(time.perf_counter() - t)
        i += 1
    print(json.dumps(latencies), flush=True)


def run(url: str, name: str, queries: list[str], n: int, mode: str, seconds: float, caches: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    procs = []
    for k in range(n):
        env["XDG_CACHE_HOME"] = str(caches / f"{mode}-{n}-{k}")  # a server workspace caches per user
        spec = {"url": url, "name": name, "queries": queries, "mode": mode, "seconds": seconds, "offset": 97 * k}
        cmd = [sys.executable, __file__, "--client"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        proc.stdin.write(json.dumps(spec) + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        procs.append(proc)
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
    start = time.time() + 1.0
    latencies = []
    for proc in procs:
        proc.stdin.write(f"{start}\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        latencies += json.loads(out.strip().splitlines()[-1])
    ms = np.array(latencies) * 1000
    return {
        "clients": n,
        "mode": mode,
        "requests": len(ms),
        "throughput_per_s": round(len(ms) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--modes", nargs="+", default=["text", "vectors"], choices=["text", "vectors"])
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client(json.loads(sys.stdin.readline()))
    if not all(1 <= n <= MAX_CLIENTS for n in args.clients) or not 0 < args.seconds <= MAX_SECONDS:
        sys.exit(f"clients must be 1..{MAX_CLIENTS} and seconds 0..{MAX_SECONDS}")

    from agent_il import IntentLearner
    from agent_il.storage.chroma_server import local_server

    texts, labels, data = clinc150()
    queries = [t for t, _ in data["test"][:500]]
    results = []
    with tempfile.TemporaryDirectory() as tmp, local_server(Path(tmp) / "chroma") as url:
        learner = IntentLearner.open(chroma_url=url, name="load-test")
        learned = learner.learn(texts, labels, task="clinc150")
        print(f"server {url}: {learned.classes_total} intents, {learned.exemplars_total} exemplars", flush=True)
        learner.close()
        print(f"{'mode':<8} {'clients':>7} {'requests':>8} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}", flush=True)
        for mode in args.modes:
            for n in args.clients:
                r = run(url, "load-test", queries, n, mode, args.seconds, Path(tmp))
                results.append(r)
                print(
                    f"{mode:<8} {n:>7} {r['requests']:>8} {r['throughput_per_s']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8}",
                    flush=True,
                )
    write_results(OUT, args.seconds, results)


def write_results(out: Path, seconds: float, results: list[dict[str, Any]]) -> None:
    """The runs' figures with the machine they ran on, as JSON."""
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    out.write_text(json.dumps({"seconds": seconds, "machine": machine, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
