"""The Python API in a dozen lines: learn two CLINC150 tasks, predict, check forgetting.

Run from the repository root: python examples/quickstart.py
"""

import csv
import tempfile
from pathlib import Path

from agent_il import IntentLearner

DATA = Path(__file__).parent / "data" / "quickstart"


def read(name: str) -> tuple[list[str], list[str]]:
    with (DATA / name).open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["intent"] for r in rows]


with tempfile.TemporaryDirectory() as tmp, IntentLearner.open(Path(tmp) / "kb") as learner:
    for task in ("banking", "travel"):
        report = learner.learn(*read(f"{task}.csv"), task=task, holdout=0.2)
        print(f"learned {task}: {len(report.new_classes)} new intents in {report.seconds:.1f} s")
    for p in learner.predict(["i want to pay my water bill now", "what plug do i need in london"], k=2):
        print(f"{p.label} ({p.confidence:.2f}) because of {p.evidence[0].text!r}")
    matrix = learner.accuracy_matrix()
    print(f"final accuracy {matrix.final_accuracy():.1f}%, forgetting {matrix.forgetting():.1f} points")
