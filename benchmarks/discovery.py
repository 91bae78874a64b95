"""Discovery of unseen intents on CLINC150, through the product (IntentLearner, real Chroma).

For each of CLINC150's 10 domains in turn: learn the 135 intents of the other 9 domains (train
split), then predict the test queries of 3 intents of the held-out domain mixed with 100
out-of-scope queries (oos_test); what is rejected as unknown goes to the inbox; ``discover``
clusters it. A cluster is *pure* to the share of its members from its majority intent; an unseen
intent is *found* when it is the majority intent of some cluster. Writes
benchmarks/results/discovery/results.json.

    python benchmarks/discovery.py [--distance 0.5] [--domains travel,home]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from agent_il import IntentLearner
from agent_il.encoding.cache import EmbeddingCache, cache_path
from agent_il.encoding.encoder import Encoder
from agent_il.inbox import discovery
from agent_il.storage import atomic

ROOT = Path(__file__).resolve().parent.parent
CLINC = ROOT / "examples" / "data" / "clinc150"
OUT = ROOT / "benchmarks" / "results" / "discovery"
UNSEEN = 3  # intents of the held-out domain fed to the inbox
NOISE = 100  # out-of-scope queries mixed in


def run_domain(
    domain: str, domains: dict[str, list[str]], data: dict, encoder: Encoder, cache: EmbeddingCache, distance: float
) -> dict:
    known = [y for d, ys in domains.items() if d != domain for y in ys]
    unseen = list(np.random.default_rng(0).choice(sorted(domains[domain]), UNSEEN, replace=False))
    train = [(t, y) for t, y in data["train"] if y in set(known)]
    probe = [(t, y) for t, y in data["test"] if y in set(unseen)] + [(t, "oos") for t, _ in data["oos_test"][:NOISE]]
    with tempfile.TemporaryDirectory() as tmp:
        learner = IntentLearner.open(Path(tmp) / "kb", encoder=encoder, auto_snapshots=0)
        texts = [t for t, _ in train]
        learner.learn_vectors(encoder.encode(texts, cache=cache), [y for _, y in train], task="known", texts=texts)
        encoder.encode([t for t, _ in probe], cache=cache)  # from the disk cache into the encoder's memory
        preds = learner.predict([t for t, _ in probe], k=1, evidence=0)  # the rejected go to the inbox
        clusters = learner.inbox.discover(distance=distance)
        learner.close()
    truth = {inbox_id(t): y for (t, y), p in zip(probe, preds) if not p.known}
    rows = []
    for c in clusters:
        majority, count = Counter(truth.get(i, "?") for i in c.ids).most_common(1)[0]
        rows.append({"key": c.key, "size": c.size, "majority": majority, "purity": count / c.size})
    found = sorted({r["majority"] for r in rows if r["majority"] in unseen})
    rejected = Counter(y for (_, y), p in zip(probe, preds) if not p.known)
    return {
        "domain": domain,
        "unseen": unseen,
        "rejected": {y: rejected.get(y, 0) for y in [*unseen, "oos"]},
        "probes": dict(Counter(y for _, y in probe)),
        "clusters": rows,
        "found": found,
        "purity": float(np.mean([r["purity"] for r in rows])) if rows else None,
        "weighted_purity": (
            float(sum(r["purity"] * r["size"] for r in rows) / sum(r["size"] for r in rows)) if rows else None
        ),
    }


def inbox_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]  # as agent_il.inbox.inbox.records names it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--distance", type=float, default=discovery.DISTANCE)
    parser.add_argument("--domains", default="")
    args = parser.parse_args()
    data = json.loads((CLINC / "data_full.json").read_text())
    domains = json.loads((CLINC / "domains.json").read_text())
    encoder = Encoder()
    cache = EmbeddingCache(cache_path(encoder.model_id), encoder.dim)

    chosen = [d for d in args.domains.split(",") if d] or list(domains)
    start = time.perf_counter()
    runs = [run_domain(d, domains, data, encoder, cache, args.distance) for d in chosen]
    found = sum(len(r["found"]) for r in runs)
    summary = {
        "distance": args.distance,
        "min_size": discovery.MIN_SIZE,
        "domains": len(runs),
        "found": found,
        "of": UNSEEN * len(runs),
        "mean_purity": float(np.mean([r["purity"] for r in runs if r["purity"] is not None])),
        "mean_weighted_purity": float(
            np.mean([r["weighted_purity"] for r in runs if r["weighted_purity"] is not None])
        ),
        "seconds": round(time.perf_counter() - start, 1),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    atomic.write_json(OUT / "results.json", {"summary": summary, "runs": runs})
    print("| held-out domain | unseen intents (rejected of 30) | oos rejected | clusters | found | purity |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        unseen = ", ".join(f"{y} ({r['rejected'][y]})" for y in r["unseen"])
        purity = "-" if r["purity"] is None else f"{100 * r['purity']:.0f}%"
        print(
            f"| {r['domain']} | {unseen} | {r['rejected']['oos']}/{NOISE} | {len(r['clusters'])} "
            f"| {len(r['found'])}/{UNSEEN} | {purity} |"
        )
    print(
        f"found {found} of {summary['of']} unseen intents; mean purity {100 * summary['mean_purity']:.0f}% "
        f"(size-weighted {100 * summary['mean_weighted_purity']:.0f}%); {summary['seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
