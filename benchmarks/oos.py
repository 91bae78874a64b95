"""Out-of-scope rejection on CLINC150 (Larson et al. 2019): in-scope accuracy (a rejected in-scope
query counts as wrong) and out-of-scope recall on the test splits, for every in-scope score side
by side, in two settings:

- ``joint``: the default head learns all 150 intents at once;
- ``incremental``: the 15-task class-incremental run (10 intents a task, the bench's seed-0 order).

Each score is calibrated the product's way (agent_il.ood.calibration.calibrate_learn, target keep 95%, on the
last learn's examples and the other intents' exemplars left out in runs, the exemplar memory
for the distances); ``val`` columns
use the reference's rule instead (threshold at 95% keep of CLINC150's in-scope val split). The oos
splits are only ever used to measure, never learned. Writes benchmarks/results/oos/results.json.

    python benchmarks/oos.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from agent_il.bench.oos import KEEP, measure
from agent_il.bench.protocol import task_order
from agent_il.config import DEFAULT_SCORE, DEFAULT_STRATEGY, SCORES
from agent_il.encoding.cache import EmbeddingCache, cache_path
from agent_il.encoding.encoder import Encoder
from agent_il.storage import atomic

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data" / "clinc150" / "data_full.json"
OUT = ROOT / "benchmarks" / "results" / "oos"


def encode_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    data = json.loads(DATA.read_text())
    encoder = Encoder()
    cache = EmbeddingCache(cache_path(encoder.model_id), encoder.dim)
    return {
        name: (encoder.encode([t for t, _ in rows], cache=cache), np.array([y for _, y in rows]))
        for name, rows in data.items()
        if name in ("train", "val", "test", "oos_val", "oos_test")
    }


def main() -> int:
    splits = encode_splits()
    classes = sorted(set(splits["train"][1].tolist()))
    results = {
        "protocol": {
            "data": "CLINC150 data_full.json: learn train; measure test (4500) and oos_test (1000)",
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "strategy": DEFAULT_STRATEGY,
            "memory_per_class": 20,
            "keep": KEEP,
            "default_score": DEFAULT_SCORE,
        },
        "joint": measure(splits, [classes]),
        "incremental": measure(splits, task_order(splits["train"][1], 15, seed=0)),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    atomic.write_json(OUT / "results.json", results)
    print("| score | setting | in-scope acc | oos recall | keep | val-calibrated in / oos | AUROC |")
    print("|---|---|---|---|---|---|---|")
    for name in SCORES:
        for setting in ("joint", "incremental"):
            f = results[setting]["scores"][name]
            a, v = f["auto"], f["val"]
            bold = "**" if name == DEFAULT_SCORE else ""
            print(
                f"| {bold}{name}{bold} | {setting} | {a['in_scope_accuracy']:.1f} | {a['oos_recall']:.1f} "
                f"| {a['in_scope_keep']:.1f} | {v['in_scope_accuracy']:.1f} / {v['oos_recall']:.1f} "
                f"| {f['auroc']:.1f} |"
            )
    for setting in ("joint", "incremental"):
        print(f"{setting}: closed-set accuracy {results[setting]['closed_set_accuracy']:.1f}")
    print(f"written to {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
