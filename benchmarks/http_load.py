"""Load on ``agent-il serve http``: 1, 4 and 16 concurrent clients against the REST API on loopback,
with one learn in the middle of each run.

Learns all 150 CLINC150 intents (20 examples each, 3,000 exemplars) into a workspace directory,
makes a read and a learn token, and starts ``agent-il serve http`` as a subprocess, as deployed.
Each run: N client threads (one keep-alive HTTP connection each) POST /v1/classify in a loop for
``--seconds``, every query a CLINC150 test or validation text never sent before (so the server
encodes each one: no cached embedding); halfway, another client POSTs /v1/learn (100 examples of a
new intent). Reports throughput, p50 / p99, failed requests, and the classify calls that ran while
the learn did: how many, how many of them started after it began and were answered before it
ended (they did not wait for it), and the longest. /metrics is scraped before and after each run: its
prediction count must grow by exactly the classify calls answered. Writes
benchmarks/results/http_load.json.

    python benchmarks/http_load.py [--clients 1 4 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from server_load import clinc150, write_results

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "http_load.json"
AGENT_IL = Path(sys.executable).with_name("agent-il")
MAX_CLIENTS, MAX_SECONDS = 64, 120


def predictions(metrics: str) -> float:
    """The total of ``agent_il_predictions_total`` over its labels."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("agent_il_predictions_total{")
    )


def run(url: str, tokens: dict[str, str], queries: Any, n: int, seconds: float, learn: list[str], label: str) -> dict:
    read = {"authorization": f"Bearer {tokens['read']}"}
    before = httpx.get(f"{url}/metrics", headers=read).text
    calls: list[tuple[float, float, int]] = []  # (start, end, status) of every classify
    lock = threading.Lock()
    start = time.perf_counter() + 0.5
    window: dict[str, Any] = {}

    def classify() -> None:
        mine = []
        with httpx.Client(base_url=url, headers=read, timeout=120) as c:
            c.get("/healthz")  # connect before the clock starts
            time.sleep(max(0.0, start - time.perf_counter()))
            while time.perf_counter() < start + seconds:
                with lock:
                    text = next(queries)
                t = time.perf_counter()
                try:
                    status = c.post("/v1/classify", json={"text": text}).status_code
                except httpx.HTTPError:
                    status = 0
                mine.append((t, time.perf_counter(), status))
        with lock:
            calls.extend(mine)

    def teach() -> None:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {tokens['learn']}"}, timeout=300) as c:
            time.sleep(max(0.0, start + seconds / 2 - time.perf_counter()))
            window["start"] = time.perf_counter()
            r = c.post("/v1/learn", json={"label": label, "examples": learn})
            window["end"] = time.perf_counter()
            window["status"] = r.status_code
            window["server_seconds"] = r.json().get("seconds")

    threads = [threading.Thread(target=classify) for _ in range(n)] + [threading.Thread(target=teach)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = httpx.get(f"{url}/metrics", headers=read).text
    ok = [c for c in calls if c[2] == 200]
    ms = np.array([(e - s) * 1000 for s, e, _ in ok])
    during = [(e - s) * 1000 for s, e, _ in calls if s < window["end"] and e > window["start"]]
    return {
        "clients": n,
        "requests": len(calls),
        "failed": len(calls) - len(ok),
        "throughput_per_s": round(len(ok) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "learn_status": window["status"],
        "learn_ms": round((window["end"] - window["start"]) * 1000, 1),
        "classify_during_learn": len(during),
        # started after the learn began and answered before it ended: proof they did not wait for it
        "classify_within_learn": sum(1 for s, e, _ in ok if s >= window["start"] and e <= window["end"]),
        "classify_during_learn_failed": sum(
            1 for s, e, st in calls if s < window["end"] and e > window["start"] and st != 200
        ),
        "longest_classify_during_learn_ms": round(max(during), 1) if during else None,
        "metrics_counted": predictions(after) - predictions(before),
        "metrics_exact": predictions(after) - predictions(before) == len(ok),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not all(1 <= n <= MAX_CLIENTS for n in args.clients) or not 0 < args.seconds <= MAX_SECONDS:
        sys.exit(f"clients must be 1..{MAX_CLIENTS} and seconds 0..{MAX_SECONDS}")

    from agent_il import IntentLearner
    from agent_il.serving.tokens import TokenStore

    texts, labels, data = clinc150()
    queries = itertools.cycle([t for t, _ in data["test"] + data["oos_test"] + data["val"] + data["oos_val"]])
    learn = [t for t, _ in data["oos_train"]][:100]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "kb"
        with IntentLearner.open(home) as learner:
            learned = learner.learn(texts, labels, task="clinc150")
        store = TokenStore(home / "tokens.json")
        tokens = {scope: store.create(f"bench-{scope}", scope) for scope in ("read", "learn")}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [str(AGENT_IL), "serve", "http", "--home", str(home), "--port", str(port)]
        log = (Path(tmp) / "serve.log").open("w")
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit("agent-il serve http did not start")
                time.sleep(0.3)
            print(
                f"serve http at {url}: {learned.classes_total} intents, {learned.exemplars_total} exemplars", flush=True
            )
            head = f"{'clients':>7} {'requests':>8} {'failed':>6} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7}"
            print(f"{head} {'learn ms':>8} {'during':>6} {'within':>6} {'longest ms':>10} {'metrics':>7}", flush=True)
            for n in args.clients:
                r = run(url, tokens, queries, n, args.seconds, learn, f"bench_new_{n}")
                results.append(r)
                print(
                    f"{n:>7} {r['requests']:>8} {r['failed']:>6} {r['throughput_per_s']:>7} {r['p50_ms']:>7} "
                    f"{r['p99_ms']:>7} {r['learn_ms']:>8} {r['classify_during_learn']:>6} "
                    f"{r['classify_within_learn']:>6} "
                    f"{r['longest_classify_during_learn_ms']!s:>10} {'exact' if r['metrics_exact'] else 'OFF':>7}",
                    flush=True,
                )
        except BaseException:
            log.flush()
            print((Path(tmp) / "serve.log").read_text()[-3000:], file=sys.stderr)  # what the server said
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    write_results(OUT, args.seconds, results)


if __name__ == "__main__":
    main()
