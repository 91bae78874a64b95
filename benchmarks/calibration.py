"""Does the rejection threshold keep what it promises (issue 17, section 3)? The realised in-scope
keep rate against the target (95%), and out-of-scope recall, in small and large workspaces.

Each point is a fresh embedded workspace made through the product's own learn path
(``IntentLearner.learn_vectors``, the real calibration at every learn), learning CLINC150 intents
in tasks of 10 (one task when there are 10), N training examples an intent drawn per seed (the
bench's draw), ``--holdout`` as the quick start uses it. Then every CLINC150 test query of those
intents is predicted (kept = not answered ``unknown``), and every oos_test query (recall = answered
``unknown``). Intents: 10, 30, 150; shots: 5, 10, 30 and all (100).

    python benchmarks/calibration.py              # 3 seeds (about 5 minutes on 2 cores)
    python benchmarks/calibration.py --seeds 10   # the README's: a 10-intent, 5-shot workspace
                                                  # calibrates on 50 rows, so one seed's keep
                                                  # varies by +-3 points
    python benchmarks/calibration.py --quick      # one seed, 10 and 30 intents
    python benchmarks/calibration.py --consolidated   # 150 intents (30 shots, all), consolidated first
    python benchmarks/calibration.py --banking77      # BANKING77's 77 intents in tasks of 11

Writes benchmarks/results/calibration/results.json and table.md (consolidated.*, banking77.*).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean, stdev
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf import CLINC, cached_encoder

from agent_il import IntentLearner
from agent_il.bench import datasets
from agent_il.bench.protocol import Split, few_shot, task_order
from agent_il.config import DEFAULT_KEEP

OUT = Path(__file__).resolve().parent / "results" / "calibration"
BANKING = Path(__file__).resolve().parent.parent / "examples" / "data" / "banking77"


def point(
    sets: dict[str, Any], enc: Any, intents: int, shots: int | None, seed: int, holdout: float, consolidate: bool
) -> dict:
    """One workspace: the first ``intents`` of the seed's task order learned task by task, then
    (``consolidate``) consolidated, then measured (``sets["oos"]`` may be None: no recall)."""
    train, test, oos = sets["train"], sets["test"], sets["oos"]
    tasks = task_order(train.labels, sets["tasks"], seed)
    classes = [y for task in tasks for y in task][:intents]
    rows = np.isin(train.labels, classes)
    learned = Split(train.x[rows], train.labels[rows], train.texts[rows])
    if shots is not None:
        learned = few_shot(learned, shots, seed)
    with tempfile.TemporaryDirectory() as tmp:
        learner = IntentLearner.open(Path(tmp) / "kb", encoder=enc)
        for t, task in enumerate(tasks[: -(-intents // len(tasks[0]))]):
            part = np.isin(learned.labels, task)
            texts = learned.texts[part].tolist()
            learner.learn_vectors(
                learned.x[part], learned.labels[part].tolist(), task=f"t{t}", texts=texts, holdout=holdout
            )
        in_scope = np.isin(test.labels, classes)
        queries, outside = test.x[in_scope], None if oos is None else oos.x
        if consolidate:
            learner.consolidate()
            queries = learner.encoder.encode(test.texts[in_scope].tolist())
            outside = None if oos is None else learner.encoder.encode(oos.texts.tolist())
        answers = learner.predict_vectors(queries, k=1, evidence=0, inbox=False)
        kept = [p.known for p in answers]
        right = [p.known and p.label == y for p, y in zip(answers, test.labels[in_scope])]
        recall = None
        if outside is not None:
            recall = 100.0 * mean(not p.known for p in learner.predict_vectors(outside, k=1, evidence=0, inbox=False))
        learner.close()
    return {"keep": 100.0 * mean(kept), "in_scope_accuracy": 100.0 * mean(right), "oos_recall": recall}


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument(
        "--consolidated", action="store_true", help="150 intents, 30 shots and all, consolidated before measuring"
    )
    parser.add_argument("--banking77", action="store_true", help="BANKING77's 77 intents in 7 tasks (no oos split)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default 3)")
    args = parser.parse_args()
    seeds = [0] if args.quick else list(range(args.seeds))
    sizes = [10, 30] if args.quick else [10, 30, 150]
    shots: list[int | None] = [5, 10, 30, None]
    if args.consolidated:
        sizes, shots = [150], [30, None]
    enc, cache = cached_encoder(None, "auto")

    def split(rows: list[tuple[str, str]]) -> Split:
        texts = [t for t, _ in rows]
        return Split(enc.encode(texts, cache=cache), np.array([y for _, y in rows]), np.array(texts))

    if args.banking77:
        data, sizes = "BANKING77 test", [77]
        corpus = datasets.read(BANKING / "train.csv", BANKING / "test.csv")
        parts = [list(zip(d.texts, d.labels or [])) for d in (corpus.train, corpus.test)]
        sets: dict[str, Any] = {"train": split(parts[0]), "test": split(parts[1]), "oos": None, "tasks": 7}
    else:
        data, clinc = "CLINC150 test / oos_test", json.loads(CLINC.read_text())
        sets = {name: split(clinc[part]) for name, part in (("train", "train"), ("test", "test"), ("oos", "oos_test"))}
        sets["tasks"] = 15
    points = []
    started = time.perf_counter()
    for intents in sizes:
        for n in shots:
            runs = [point(sets, enc, intents, n, seed, args.holdout, args.consolidated) for seed in seeds]
            row = {"intents": intents, "shots": n or "all"}
            row |= {k: None if runs[0][k] is None else mean(r[k] for r in runs) for k in runs[0]}
            row["keep_error"] = row["keep"] - 100.0 * DEFAULT_KEEP
            row["keep_se"] = stdev(r["keep"] for r in runs) / len(runs) ** 0.5 if len(runs) > 1 else None
            points.append(row)
            print(json.dumps(row), flush=True)
    lines = [
        f"Target keep {100 * DEFAULT_KEEP:.0f}%, --holdout {args.holdout}, seeds 0 to {seeds[-1]}, {data}"
        + (", after `consolidate`." if args.consolidated else "."),
        "",
        "| intents | shots | realised keep | keep - target (± standard error over seeds) | in-scope acc | oos recall |",
        "|---|---|---|---|---|---|",
        *[
            f"| {p['intents']} | {p['shots']} | {p['keep']:.1f} | {p['keep_error']:+.1f}"
            + ("" if p["keep_se"] is None else f" ± {p['keep_se']:.1f}")
            + f" | {p['in_scope_accuracy']:.1f} | {cell(p['oos_recall'])} |"
            for p in points
        ],
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {"target_keep": DEFAULT_KEEP, "holdout": args.holdout, "seeds": seeds, "points": points}
    doc["consolidated"] = args.consolidated
    doc["seconds"] = round(time.perf_counter() - started, 1)
    name = "consolidated" if args.consolidated else "banking77" if args.banking77 else "results"
    (OUT / f"{name}.json").write_text(json.dumps(doc, indent=1))
    (OUT / ("table.md" if name == "results" else f"{name}.md")).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
