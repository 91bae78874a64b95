"""Consolidation (issue 17, section 1): the encoder fine-tuned on the knowledge base.

1. The class-incremental protocol with consolidation, from the command line as a user runs it:
   ``agent-il bench ... --strategies ridge --consolidate-every K`` on CLINC150 (15 x 10, K = 5)
   and BANKING77 (7 x 11, K = 4), 3 seeds, beside the same run on the frozen encoder; on CLINC150
   the out-of-scope figures too (the default head over the consolidated encoder, all 150 intents).
2. The product path: a workspace of all 15,000 CLINC150 training examples (150 intents, 15
   learns), ``learner.consolidate()`` timed on this machine, accuracy and out-of-scope answers of
   ``predict`` on the test and oos_test splits before and after, and 20-example learns of new
   intents before and after (the fast path), each against a bare encode of the same texts.

    python benchmarks/consolidation.py              # everything (about an hour on 2 cores)
    python benchmarks/consolidation.py --quick      # one seed, product path on 30 intents

Writes benchmarks/results/consolidation/: the bench's folders (results.json, report.md, plots),
product.json and table.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knowledge import learn_runs, new_intents
from perf import cached_encoder, load_sets, machine

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
OUT = ROOT / "benchmarks" / "results" / "consolidation"
CLINC = DATA / "clinc150" / "data_full.json"
SETS = {
    "banking77": ([str(DATA / "banking77" / "train.csv"), "--test", str(DATA / "banking77" / "test.csv")], 4),
    "clinc150": ([str(CLINC)], 5),
}


def bench(
    name: str, args: list[str], seeds: str, every: int | None, quick: bool, shots: int | None = None
) -> dict[str, Any]:
    folder = OUT / (name if every else f"{name}-frozen")
    strategies = "ridge"
    if shots:  # the baselines too, on the same vectors (consolidated ones when consolidating)
        folder, strategies = folder.with_name(f"{folder.name}-{shots}-shots"), "ridge,nearest-mean,router,logreg"
        args = [*args, "--shots", str(shots)]
    cmd = [sys.executable, str(ROOT / "cli.py"), "bench", *args, "--strategies", strategies, "--seeds", seeds]
    cmd += ["--out", str(folder), "--json"] + (["--consolidate-every", str(every)] if every else [])
    cmd += ["--quick"] if quick else []
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout)
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    return result


def answers(learner: Any, test: tuple[list[str], list[str]], oos: list[str]) -> dict[str, float]:
    """Accuracy of ``predict`` on the test split (a rejected query counts as wrong), the share
    of in-scope queries kept, and oos recall, as a user of the workspace meets them."""
    got = learner.predict(test[0], evidence=0, inbox=False)
    out = learner.predict(oos, evidence=0, inbox=False)
    return {
        "in_scope_accuracy": round(100 * float(np.mean([p.label == y for p, y in zip(got, test[1])])), 2),
        "closed_set_accuracy": round(100 * float(np.mean([p.top_k[0][0] == y for p, y in zip(got, test[1])])), 2),
        "in_scope_kept": round(100 * float(np.mean([p.known for p in got])), 2),
        "oos_recall": round(100 * float(np.mean([not p.known for p in out])), 2),
    }


def product(quick: bool) -> dict[str, Any]:
    from agent_il import IntentLearner

    sets = load_sets(quick)
    oos = [t for t, _ in json.loads(CLINC.read_text())["oos_test"]]
    enc, cache = cached_encoder(None, backend="onnx")
    labels = sorted(set(sets["train"].labels))[: 30 if quick else 150]
    lab = np.array(sets["train"].labels)
    x = enc.encode(sets["train"].texts, cache=cache)
    enc._memo.clear()
    rows = [(t, y) for t, y in zip(sets["test"].texts, sets["test"].labels) if y in set(labels)]
    test = ([t for t, _ in rows], [y for _, y in rows])
    intents = new_intents(sets, 12)
    with tempfile.TemporaryDirectory() as tmp:
        learner = IntentLearner.open(Path(tmp) / "kb", encoder=enc)
        for s in range(0, len(labels), 10):
            rows = np.flatnonzero(np.isin(lab, labels[s : s + 10]))
            texts = [sets["train"].texts[r] for r in rows]
            learner.learn_vectors(x[rows], lab[rows].tolist(), task=f"clinc-{s // 10 + 1}", texts=texts)
        before = answers(learner, test, oos)
        learns_before = learn_runs(learner, intents[:6])
        for _ in range(6):
            learner.rollback()  # the same knowledge base as consolidated, without the four test learns
        start = time.perf_counter()
        report = learner.consolidate()
        seconds = time.perf_counter() - start
        after = answers(learner, test, oos)
        learns_after = learn_runs(learner, intents[6:])
        learner.close()
    return {
        "machine": machine("cpu"),
        "examples": report.tuning["examples"],
        "intents": len(labels),
        "consolidate_seconds": round(seconds, 1),
        "goal_seconds": 600,
        "report": report.to_dict(),
        "predict_before": before,
        "predict_after": after,
        "learn_20_before": {k: learns_before[k] for k in ("median_wall_s", "bare_encode_20_median_s", "walls_s")},
        "learn_20_after": {k: learns_after[k] for k in ("median_wall_s", "bare_encode_20_median_s", "walls_s")},
    }


def oos_cells(oos: dict[str, Any]) -> str:
    """The default score's figures at the product's own threshold ('auto') and at the one fitted
    on CLINC150's val split, head learned in one go."""
    hybrid = oos["joint"]["scores"]["hybrid"]
    cells = [
        f"{k}: in-scope {hybrid[k]['in_scope_accuracy']:.1f}, oos recall {hybrid[k]['oos_recall']:.1f}"
        for k in ("auto", "val")
    ]
    return "; ".join(cells)


def table(benches: dict[str, Any], prod: dict[str, Any] | None) -> str:
    lines = ["| data set | encoder | final accuracy | forgetting | consolidation s a run |", "|---|---|---|---|---|"]
    for key, r in benches.items():
        s = r["strategies"]["ridge"]
        acc, fgt = s["final_accuracy"], s["forgetting"]
        every = r["protocol"].get("consolidate_every")
        kind = f"consolidated every {every}" if every else "frozen"
        spent = s["consolidation_seconds_total"]["mean"]
        cells = [
            key.split("/")[0],
            kind,
            f"{acc['mean']:.2f} ± {acc['std']:.2f}",
            f"{fgt['mean']:.2f} ± {fgt['std']:.2f}",
        ]
        lines.append("| " + " | ".join([*cells, f"{spent:.0f}"]) + " |")
        if "oos" in r:
            lines.append(f"|  | out-of-scope, {kind} | {oos_cells(r['oos'])} | | |")
    if prod:
        before, after = prod["learn_20_before"], prod["learn_20_after"]
        lines += [
            "",
            f"Product path: {prod['examples']} examples of {prod['intents']} intents, `consolidate` "
            f"{prod['consolidate_seconds']} s (goal <= 600).",
            f"- predict before: {prod['predict_before']}",
            f"- predict after: {prod['predict_after']}",
            f"- 20-example learn, median: before {before['median_wall_s']} s, after {after['median_wall_s']} s",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--skip-product", action="store_true")
    parser.add_argument("--fewshot", action="store_true", help="also N = 5, 10, 30 shots, consolidated at the end")
    args = parser.parse_args()
    seeds = "0" if args.quick else args.seeds
    OUT.mkdir(parents=True, exist_ok=True)
    benches: dict[str, Any] = {}
    if args.skip_bench and (OUT / "benches.json").exists():  # the table from the last run's benches
        benches = json.loads((OUT / "benches.json").read_text())
    prod = None
    if not args.skip_product:
        prod = product(args.quick)
        (OUT / "product.json").write_text(json.dumps(prod, indent=1))
        print(json.dumps({k: prod[k] for k in ("consolidate_seconds", "predict_before", "predict_after")}), flush=True)
    if not args.skip_bench:
        for name, (files, every) in SETS.items():
            for k in (None, every):
                benches[f"{name}/{k or 'frozen'}"] = bench(name, files, seeds, k, args.quick)
                print(name, k, benches[f"{name}/{k or 'frozen'}"]["strategies"]["ridge"]["final_accuracy"], flush=True)
        (OUT / "benches.json").write_text(json.dumps(benches, indent=1))
    if args.fewshot:
        fewshot = {}
        for name, (files, _) in SETS.items():
            tasks = 7 if name == "banking77" else 15
            for n in (5, 10, 30):
                r = bench(name, files, seeds, tasks, args.quick, shots=n)
                fewshot[f"{name}/{n}"] = {k: v["final_accuracy"] for k, v in r["strategies"].items()}
                print(name, n, fewshot[f"{name}/{n}"], flush=True)
                (OUT / "fewshot.json").write_text(json.dumps(fewshot, indent=1))
    (OUT / "table.md").write_text(table(benches, prod))
    print(table(benches, prod))


if __name__ == "__main__":
    main()
