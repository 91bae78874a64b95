"""What moving a workspace to another encoder costs (``agent-il migrate``), against the bare
encode of the same texts by the same model and backend, measured in the same run.

    python benchmarks/migration.py --model /path/to/all-mpnet-base-v2     # 150 intents
    python benchmarks/migration.py --model /path/to/model --quick         # 30 intents: a smoke run

The workspace: 150 CLINC150 intents learned in tasks of 10 with --holdout 0.2 (15,000 texts: 12,000
examples and 3,000 held out), as benchmarks/knowledge.py builds it, on the default encoder. The
bare encode is ``Encoder(model, backend).encode(texts)`` of those 15,000 texts with a fresh
encoder (no memo, no cache) after the model is loaded, run before and after the migration (the
figure is their mean); the migration is ``learner.migrate(model)`` on a workspace whose cache has
never seen that model, timed from after its model loads (``report.seconds``) and as a whole call.
Writes benchmarks/results/migration/migration.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf import build_clinc_workspace, cached_encoder, load_sets, machine

OUT = Path(__file__).resolve().parent / "results" / "migration"


def bare_encode(model: str, backend: str, texts: list[str]) -> float:
    from agent_il.encoding.encoder import Encoder

    enc = Encoder(model, backend=backend)
    enc.encode(texts[:8])  # the model loaded and warm, as the migration's is before its clock starts
    enc._memo.clear()
    start = time.perf_counter()
    enc.encode(texts)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the encoder to migrate to (name or local directory)")
    parser.add_argument("--backend", default="auto", help="its backend (default: what migrate chooses)")
    parser.add_argument("--quick", action="store_true", help="30 intents: a smoke run")
    args = parser.parse_args()
    from agent_il.encoding.encoder import normalise_model_id, resolve

    model = normalise_model_id(args.model)
    backend = resolve(args.backend, model, None) if args.backend == "auto" else args.backend
    classes = 30 if args.quick else 150
    sets = load_sets(args.quick)
    enc, cache = cached_encoder(None, "auto")
    result: dict[str, Any] = {"machine": machine("cpu"), "classes": classes, "from": enc.model_id, "to": model}
    with tempfile.TemporaryDirectory() as tmp:
        learner = build_clinc_workspace(Path(tmp) / "kb", sets, enc, cache, classes)
        recs = [learner.stores[s].load(learner.state.live(s)) for s in ("examples", "holdout")]
        texts = [t for r in recs for t in r.texts]
        result["texts"] = len(texts)
        bare = [bare_encode(model, backend, texts)]
        start = time.perf_counter()
        report = learner.migrate(model, backend=backend)
        whole = time.perf_counter() - start
        bare.append(bare_encode(model, backend, texts))
        result["migration"] = {**report.to_dict(), "call_seconds": round(whole, 3)}
        base = sum(bare) / len(bare)
        result["bare_encode_seconds"] = [round(b, 3) for b in bare]
        result["ratio"] = {
            "goal": "<= 1.1x the bare encode of the same texts with the new model",
            "migration_over_bare": round(report.seconds / base, 3),
            "call_over_bare": round(whole / base, 3),
        }
        learner.close()
    result["machine"]["load_average_at_end"] = os.getloadavg()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "migration.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))


if __name__ == "__main__":
    main()
