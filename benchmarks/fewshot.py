"""Few-shot intents (issue 17, section 2): every strategy and three baselines under the
class-incremental protocol with N training examples an intent, N = 5, 10, 30, drawn per seed,
on CLINC150 (15 tasks of 10) and BANKING77 (7 of 11); the full test splits. The baselines run in
the same process on the same draws (agent_il/bench/baselines.py): nearest class mean, a
semantic-router-style router (cosine to every stored utterance, top 5, mean per route) and joint
logistic regression refitted at every task.

    python benchmarks/fewshot.py                 # 3 seeds, N = 5, 10, 30 (about 15 minutes on 2 cores)
    python benchmarks/fewshot.py --quick         # one seed, N = 5, the first 3 tasks

Writes benchmarks/results/fewshot/results.json and table.md (final accuracy, mean +- std).
The same runs from the command line: ``agent-il bench FILE --shots N``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from agent_il import strategies
from agent_il.bench import datasets, protocol
from agent_il.bench.baselines import BASELINES
from agent_il.config import DEFAULT_STRATEGY

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
OUT = ROOT / "benchmarks" / "results" / "fewshot"
SETS = {
    "clinc150": (DATA / "clinc150" / "data_full.json", None),
    "banking77": (DATA / "banking77" / "train.csv", DATA / "banking77" / "test.csv"),
}


def table(results: dict[str, Any]) -> str:
    """Final accuracy per data set, strategy and N, with the best baseline marked."""
    lines = []
    for name, by_shots in results.items():
        shots = list(by_shots)
        lines += [f"### {name}", "", "| strategy | " + " | ".join(f"{n} shots" for n in shots) + " |"]
        lines.append("|---|" + "---|" * len(shots))
        for strategy in next(iter(by_shots.values()))["strategies"]:
            cells = []
            for n in shots:
                acc = by_shots[n]["strategies"][strategy]["final_accuracy"]
                cells.append(f"{acc['mean']:.1f} ± {acc['std']:.1f}")
            label = f"{strategy} (baseline)" if strategy in BASELINES else strategy
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        for n in shots:
            s = by_shots[n]["strategies"]
            best = max(BASELINES, key=lambda b: s[b]["final_accuracy"]["mean"])
            gap = s[DEFAULT_STRATEGY]["final_accuracy"]["mean"] - s[best]["final_accuracy"]["mean"]
            lines.append(f"- {n} shots: {DEFAULT_STRATEGY} {gap:+.1f} points against the best baseline ({best})")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shots", default="5,10,30")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    shots = [5] if args.quick else [int(n) for n in args.shots.split(",")]
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    names = [*strategies.REGISTRY, protocol.REFERENCE, *BASELINES]
    results: dict[str, Any] = {}
    started = time.perf_counter()
    with datasets.Embeddings() as embed:
        for name, (train, test) in SETS.items():
            corpus = datasets.read(train, test)
            train_split, test_split = datasets.encode(corpus, embed)
            n_tasks = protocol.default_task_count(corpus.classes)
            results[name] = {}
            for n in shots:
                t = time.perf_counter()
                run = protocol.run(
                    train_split,
                    test_split,
                    names=names,
                    n_tasks=n_tasks,
                    seeds=seeds,
                    limit_tasks=3 if args.quick else None,
                    shots=n,
                ).to_dict()
                run.pop("matrices")
                run["seconds"] = round(time.perf_counter() - t, 1)
                results[name][n] = run
                print(f"{name} {n} shots: {run['seconds']} s", flush=True)
    doc = {"model": embed.model_id, "backend": embed.backend, "seconds": round(time.perf_counter() - started, 1)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({**doc, "results": results}, indent=1))
    (OUT / "table.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
