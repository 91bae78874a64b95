"""Encode, learn and predict throughput on each device: CUDA (when present) against the CPU, in
the same run (issue 7). Writes benchmarks/results/perf/gpu.json.

    python benchmarks/gpu.py                     # cpu, and cuda when torch sees a GPU
    python benchmarks/gpu.py --devices cuda --texts 4000

- encode: the encoder alone (SentenceTransformer.encode, batch 64, normalised) on CLINC150 test
  queries, texts per second;
- learn: ``IntentLearner.learn`` of 10 CLINC150 intents (100 texts each, real encoding, fresh
  workspace opened with ``device=``), examples per second, with LearnReport.timings;
- predict: ``predict`` of the same test queries on that workspace, queries per second.

Medians of ``--repeats``; every timed call gets texts the encoder has not cached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import perf  # noqa: E402  (the same data helpers and cache reset)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(device: str, sets: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from agent_il import IntentLearner
    from agent_il.encoding.encoder import Encoder

    queries = perf.test_queries(sets, args.texts, 150)
    train = sets["train"]
    intents = sorted(set(train.labels))
    enc = Encoder(device=device)
    model = enc.model
    model.encode(queries[:64], batch_size=64)  # warm-up (CUDA context, kernels)
    encode_s = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        model.encode(queries, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        sync(device)
        encode_s.append(time.perf_counter() - t)
    learns, predict_s = [], []
    tmp = Path(tempfile.mkdtemp(prefix="agent-il-gpu-"))
    try:
        for r in range(args.repeats):
            picked = set(intents[10 * r : 10 * r + 10])
            rows = [i for i, y in enumerate(train.labels) if y in picked]
            texts, labels = [train.texts[i] for i in rows], [train.labels[i] for i in rows]
            enc._memo.clear()
            learner = IntentLearner.open(tmp / f"ws{r}", encoder=enc)
            t = time.perf_counter()
            report = learner.learn(texts, labels, task="ten")
            sync(device)
            learns.append({"wall_s": time.perf_counter() - t, "examples": len(texts), "timings": report.timings})
            perf.forget(learner)
            t = time.perf_counter()
            learner.predict(queries, inbox=False)
            sync(device)
            predict_s.append(time.perf_counter() - t)
            learner.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = statistics.median(x["wall_s"] for x in learns)
    return {
        "device": device,
        "encode_texts_per_s": round(len(queries) / statistics.median(encode_s), 1),
        "learn_examples_per_s": round(learns[0]["examples"] / wall, 1),
        "learn_wall_s": round(wall, 3),
        "learn_timings_s": {
            k: round(statistics.median(x["timings"][k] for x in learns), 4) for k in learns[0]["timings"]
        },
        "predict_queries_per_s": round(len(queries) / statistics.median(predict_s), 1),
    }


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", default=None, help="comma-separated (default: cpu, plus cuda when present)")
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=perf.OUT)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    devices = args.devices.split(",") if args.devices else ["cpu", *(["cuda"] if cuda else [])]
    if any(d.startswith("cuda") for d in devices) and not cuda:
        ap.error("cuda asked for but torch sees no CUDA device")
    sets = perf.load_sets(False)
    rows = {d: measure(d, sets, args) for d in devices}
    result: dict[str, Any] = {
        "machine": perf.machine(",".join(devices)),
        "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
        "note": None if cuda else "no CUDA device here: CPU figures only",
        "devices": rows,
    }
    if "cpu" in rows and any(d.startswith("cuda") for d in rows):
        gpu = next(v for d, v in rows.items() if d.startswith("cuda"))
        result["speedup_cuda_over_cpu"] = {
            k: round(gpu[k] / rows["cpu"][k], 2)
            for k in ("encode_texts_per_s", "learn_examples_per_s", "predict_queries_per_s")
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
