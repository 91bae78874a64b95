"""How far frozen all-MiniLM-L6-v2 embeddings can go: the accuracy ceilings behind the default's
targets (CLINC150 95.5 / BANKING77 94.0 final ACC; 93.0 in-scope with 85.0 oos recall).

A class-incremental ridge head ends exactly where a ridge head fitted on all the data does, so
every figure here is a joint fit on the full training split, scored on the test split:

- the default head (ridge on 2,048 random ReLU features), and the same at 4,096 features;
- exact kernel ridge (every training row a basis function: what random features approximate,
  at an O(n^3) solve);
- each on the product's embedding (the last layer, mean-pooled) and on three layers of the same
  frozen model, mean-pooled and concatenated (6, 5, 4);
- what exact kernel ridge costs learned task by task (its Cholesky factor grown by each task);
- CLINC150 out of scope: the best oos recall any threshold of the default score reaches at 93.0
  in-scope accuracy, and the share of in-scope queries it keeps.

Hyperparameters are the best of a small grid on the test split itself, so the figures are upper
bounds, not results. Writes benchmarks/results/ceiling/results.json; about 15 minutes on 2 cores
and 9 GB of memory (the kernel matrices of 15,000 rows).

    python benchmarks/ceiling.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent_il import data
from agent_il.bench.oos import KEEP, scored
from agent_il.bench.protocol import task_order
from agent_il.config import DEFAULT_SCORE
from agent_il.encoding.encoder import Encoder
from agent_il.storage import atomic
from agent_il.strategies.ridge import RidgeStrategy

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
OUT = ROOT / "benchmarks" / "results" / "ceiling"
LAYERS = (6, 5, 4)
SETS = {
    "clinc150": {s: (DATA / "clinc150" / "data_full.json", s) for s in ("train", "test", "oos_test")},
    "banking77": {s: (DATA / "banking77" / f"{s}.csv", None) for s in ("train", "test")},
}
RIDGE_GRID = [(2048, 1.0), (4096, 1.0), (4096, 30.0)]
KERNELS = {"rbf": lambda s: torch.exp(2.0 * (s - 1.0)), "poly2": lambda s: (s + 1.0) ** 2}
KERNEL_LAMBDAS = (0.01, 0.1, 1.0)
TASKS = {"clinc150": 15, "banking77": 7}


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@torch.no_grad()
def layer_means(encoder: Encoder, texts: list[str], batch: int = 128) -> np.ndarray:
    """Mean-pooled hidden states of ``LAYERS`` for each text: (n, len(LAYERS), d)."""
    model = encoder.model
    module = model[0]
    out = []
    for start in range(0, len(texts), batch):
        tokens = module.tokenizer(
            texts[start : start + batch],
            padding=True,
            truncation=True,
            max_length=module.max_seq_length,
            return_tensors="pt",
        )
        hidden = module.auto_model(**tokens, output_hidden_states=True).hidden_states
        mask = tokens["attention_mask"][..., None].float()
        out.append(torch.stack([(hidden[k] * mask).sum(1) / mask.sum(1) for k in LAYERS], 1).numpy())
    return np.concatenate(out)


def features(encoder: Encoder, texts: list[str]) -> dict[str, np.ndarray]:
    means = layer_means(encoder, texts)
    product = unit(means[:, 0])
    drift = float(np.abs(product[:256] - encoder.encode(texts[:256])).max())
    assert drift < 1e-4, f"the last layer's mean is not the product's embedding ({drift})"
    return {
        "last layer": product,
        "layers 6+5+4": unit(np.concatenate([unit(means[:, k]) for k in range(len(LAYERS))], 1)),
    }


def accuracy(scores: torch.Tensor, y: np.ndarray) -> float:
    return 100.0 * float((scores.argmax(1).numpy() == y).mean())


def ridge(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, width: int, lam: float) -> dict[str, Any]:
    head = RidgeStrategy(features=width, ridge_lambda=lam)
    start = time.perf_counter()
    head.fit(torch.from_numpy(x), torch.from_numpy(y), int(y.max()) + 1, None)
    seconds = time.perf_counter() - start
    return {"accuracy": accuracy(head.logits(torch.from_numpy(xt)), yt), "fit_seconds": round(seconds, 2)}


def kernel_ridge(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, kind: str) -> dict[str, Any]:
    """Exact kernel ridge, the limit random features approach; the best lambda of the grid."""
    a, at = torch.from_numpy(x).double(), torch.from_numpy(xt).double()
    gram, cross = KERNELS[kind](a @ a.T), KERNELS[kind](at @ a.T)
    target = torch.nn.functional.one_hot(torch.from_numpy(y)).double()
    best: dict[str, Any] = {"accuracy": -1.0}
    for lam in KERNEL_LAMBDAS:
        start = time.perf_counter()
        shifted = gram.clone()
        shifted.diagonal().add_(lam)
        coef = torch.cholesky_solve(target, torch.linalg.cholesky(shifted))
        seconds = time.perf_counter() - start
        acc = accuracy(cross @ coef, yt)
        if acc > best["accuracy"]:
            best = {"accuracy": acc, "lambda": lam, "solve_seconds": round(seconds, 2), "rows": len(x)}
    return best


def kernel_ridge_by_task(x: np.ndarray, labels: np.ndarray, tasks: list[list[str]]) -> dict[str, Any]:
    """What exact kernel ridge costs class-incrementally at its cheapest: each task extends the
    Cholesky factor of the kernel matrix by its own rows (a triangular solve against every row
    learned before) and solves for the coefficients again."""
    kernel, lam = KERNELS["rbf"], 0.01
    seconds, factor = [], torch.zeros(0, 0, dtype=torch.float64)
    seen = np.zeros(0, dtype=np.int64)
    a = torch.from_numpy(x).double()
    target = torch.nn.functional.one_hot(torch.from_numpy(np.unique(labels, return_inverse=True)[1])).double()
    for task in tasks:
        new = np.flatnonzero(np.isin(labels, task))
        start = time.perf_counter()
        block = kernel(a[new] @ a[new].T)
        block.diagonal().add_(lam)
        below = torch.linalg.solve_triangular(factor, kernel(a[seen] @ a[new].T), upper=False)
        corner = torch.linalg.cholesky(block - below.T @ below)
        factor = torch.cat([torch.nn.functional.pad(factor, (0, len(new))), torch.cat([below.T, corner], 1)])
        seen = np.concatenate([seen, new])
        torch.cholesky_solve(target[seen], factor)
        seconds.append(round(time.perf_counter() - start, 2))
    mean = round(float(np.mean(seconds)), 2)
    return {"seconds_per_task": seconds, "mean": mean, "factor_mb": round(factor.numel() * 8 / 1e6)}


def oos_ceiling(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """The default score's trade-off on CLINC150's test splits under the default head."""
    classes = sorted(set(splits["train"][1].tolist()))
    right, scores = scored(splits, [classes], (DEFAULT_SCORE,))
    got = scores[DEFAULT_SCORE][1]
    best = {"oos_recall": 0.0, "in_scope_keep": None}
    for t in np.unique(got["test"]):
        kept = got["test"] >= t
        recall = 100.0 * float((got["oos_test"] < t).mean())
        if 100.0 * (right & kept).mean() >= 93.0 and recall > best["oos_recall"]:
            best = {"oos_recall": recall, "in_scope_keep": 100.0 * float(kept.mean())}
    at_keep = np.quantile(got["test"], 1 - KEEP)
    return {
        "closed_set_accuracy": 100.0 * float(right.mean()),
        "best_at_in_scope_93": best,
        f"at_{int(KEEP * 100)}_keep": {
            "in_scope_accuracy": 100.0 * float((right & (got["test"] >= at_keep)).mean()),
            "oos_recall": 100.0 * float((got["oos_test"] < at_keep).mean()),
        },
    }


def main() -> int:
    torch.set_num_threads(2)
    encoder = Encoder()
    results: dict[str, Any] = {"model": "sentence-transformers/all-MiniLM-L6-v2", "layers": list(LAYERS)}
    for name, parts in SETS.items():
        rows = {s: data.read(path, split=split) for s, (path, split) in parts.items()}
        labels = {s: np.array(rows[s].labels or []) for s in rows}
        classes = {c: i for i, c in enumerate(sorted(set(labels["train"].tolist())))}
        y = {s: np.array([classes.get(v, -1) for v in labels[s]]) for s in rows}
        feats = {s: features(encoder, rows[s].texts) for s in rows}
        results[name] = {}
        for view in feats["train"]:
            x = {s: feats[s][view] for s in feats}
            split = (x["train"], y["train"], x["test"], y["test"])
            figures: dict[str, Any] = {}
            for width, lam in RIDGE_GRID:
                figures[f"ridge {width} features, lambda {lam:g}"] = ridge(*split, width, lam)
            for kind in KERNELS:
                figures[f"kernel ridge ({kind})"] = kernel_ridge(*split, kind)
            if view != "last layer":
                tasks = task_order(labels["train"], TASKS[name], seed=0)
                figures["kernel ridge (rbf), task by task"] = kernel_ridge_by_task(x["train"], labels["train"], tasks)
            if "oos_test" in x:
                figures["out of scope"] = oos_ceiling({s: (x[s], labels[s]) for s in x})
            results[name][view] = figures
            for head, f in figures.items():
                print(f"{name:9} | {view:12} | {head:32} | {json.dumps(f)}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    atomic.write_json(OUT / "results.json", results)
    print(f"written to {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
