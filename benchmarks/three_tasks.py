"""Three CLINC150 tasks of 10 intents learned in sequence, for every strategy.

Prints the accuracy matrix figures behind the core test (tests/test_continual.py): accuracy on
task 1's test set right after task 1 and after task 3, the drop, final average accuracy, and
learn time. Usage: python benchmarks/three_tasks.py [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from agent_il import Encoder, IntentLearner
from agent_il.strategies import REGISTRY

DATA = Path(__file__).resolve().parent.parent / "examples" / "data" / "clinc150" / "data_full.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="order of the intents (default 0, as in the tests)")
    args = parser.parse_args()
    data = json.loads(DATA.read_text())
    order = np.random.default_rng(args.seed).permutation(sorted({y for _, y in data["train"]}))
    tasks = [set(order[i * 10 : (i + 1) * 10]) for i in range(3)]

    def split(name: str, classes: set[str]) -> tuple[list[str], list[str]]:
        rows = [(t, y) for t, y in data[name] if y in classes]
        return [t for t, _ in rows], [y for _, y in rows]

    encoder = Encoder()
    encoder.encode([t for t, y in data["train"] + data["test"] if any(y in c for c in tasks)])  # warm, not timed
    print(f"{'strategy':<11} {'task1 after 1':>13} {'after 3':>8} {'drop':>6} {'final avg':>9} {'learn s':>8}")
    for name in REGISTRY:
        with tempfile.TemporaryDirectory() as tmp:
            learner = IntentLearner.open(Path(tmp) / "kb", strategy=name, encoder=encoder, auto_snapshots=0)
            rows, seconds = [], 0.0
            for i, classes in enumerate(tasks):
                start = time.perf_counter()
                learner.learn(*split("train", classes))
                seconds += time.perf_counter() - start
                row = []
                for j in range(i + 1):
                    texts, labels = split("test", tasks[j])
                    preds = learner.predict(texts, k=1, evidence=0)
                    row.append(100 * float(np.mean([p.label == y for p, y in zip(preds, labels)])))
                rows.append(row)
            first, last = rows[0][0], rows[-1][0]
            final = float(np.mean(rows[-1]))
            print(f"{name:<11} {first:>13.1f} {last:>8.1f} {first - last:>6.1f} {final:>9.1f} {seconds:>8.2f}")


if __name__ == "__main__":
    main()
