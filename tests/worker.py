"""Another agent process, for the multi-process tests: opens a workspace (a directory or a
workspace on a Chroma server), prints ``ready``, then does one thing and prints ``done``.

    python tests/worker.py '{"where": {...}, "op": "learn" | "restore" | "rollback" | "agent", ...}'
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from agent_il import IntentLearner


def main() -> None:
    spec = json.loads(sys.argv[1])
    learner = IntentLearner.open(**spec["where"], create=False)
    if spec["op"] != "agent":  # the learning stack (torch) loads on first use: load it before the kill window
        import agent_il.engine.edit  # noqa: F401

        _ = learner.strategy
    print("ready", flush=True)
    time.sleep(max(0.0, spec.get("start_at", 0) - time.time()))  # lets several workers start together
    op = spec["op"]
    if op == "learn":
        data = np.load(spec["data"])
        texts = [str(t) for t in data["texts"]]
        learner.learn_vectors(data["x"], [str(y) for y in data["labels"]], task=spec.get("task"), texts=texts)
    elif op == "restore":
        learner.restore(spec["snapshot"])
    elif op == "rollback":
        learner.rollback()
    elif op == "agent":  # answer each line of stdin with the predicted label
        for line in sys.stdin:
            print(json.dumps({"label": learner.predict([line.strip()], k=1, evidence=0)[0].label}), flush=True)
    learner.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
