"""The article's experiment, on scikit-learn's bundled digits (MNIST cannot be downloaded here).

Five tasks of two digits each (0-1, 2-3, 4-5, 6-7, 8-9) learned in sequence by an MLP head through
the generic vector entry point (``learn_vectors``). The first task is learned with no penalty
(there is nothing to protect yet), then EWC holds what came before. After each task: accuracy
on each task's test digits; at the end: overall accuracy on all ten digits, no task id.

Run from the repository root: python examples/split_digits.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from agent_il import IntentLearner
from agent_il.config import DEFAULT_STRATEGY

STRATEGIES = ["naive", "ewc", "replay", DEFAULT_STRATEGY]
TASKS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]


def main() -> None:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = np.array([str(d) for d in digits.target])
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    for name in dict.fromkeys(STRATEGIES):
        print(f"\n{name}: accuracy (%) on each task's test digits after each task")
        print("after    " + "  ".join(f"{a}-{b}".rjust(5) for a, b in TASKS))
        with tempfile.TemporaryDirectory() as tmp:
            learner = IntentLearner.open(Path(tmp) / "kb", strategy=name, auto_snapshots=0)
            for i, task in enumerate(TASKS):
                mask = np.isin(y_train, [str(d) for d in task])
                learner.learn_vectors(x_train[mask], y_train[mask].tolist(), task=f"{task[0]}-{task[1]}")
                cells = []
                for other in TASKS[: i + 1]:
                    m = np.isin(y_test, [str(d) for d in other])
                    preds = learner.predict_vectors(x_test[m], k=1, evidence=0)
                    cells.append(100 * np.mean([p.label == t for p, t in zip(preds, y_test[m])]))
                print(f"{task[0]}-{task[1]}      " + "  ".join(f"{c:5.1f}" for c in cells))
            preds = learner.predict_vectors(x_test, k=1, evidence=0)
            overall = 100 * np.mean([p.label == t for p, t in zip(preds, y_test)])
            print(f"{name} overall accuracy on all 10 digits: {overall:.1f}%")


if __name__ == "__main__":
    main()
