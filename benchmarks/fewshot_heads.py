"""Can a closed-form head beat logistic regression at a few examples an intent (issue 17,
section 2)? Every head here is fitted on all the training rows at once (the ridge head's final
state in the class-incremental protocol is exactly that), on the frozen default encoder, N = 5, 10
and 30 examples an intent drawn as the bench draws them, and scored on the whole test split beside
the baseline it has to beat, scikit-learn's logistic regression as the bench runs it (C = 10).

Each family is given its best setting *on the test split* (an oracle: an upper bound on what
tuning it could reach):

- ``ridge``: the default head (random ReLU features, lambda = 1), and its best lambda;
- ``kernel ridge``: the exact limit of infinitely many random features, an RBF kernel on the
  unit sphere, solved in the dual;
- ``lda``: a Gaussian classifier with one shrunk covariance (the exemplar statistics' model);
- ``nearest-mean``, and ``ridge + nearest-mean`` (the two scores standardised and added).

    python benchmarks/fewshot_heads.py            # 3 seeds (about 10 minutes on 2 cores)

Writes benchmarks/results/fewshot/heads.json and heads.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fewshot import OUT, SETS

from agent_il.bench import datasets, protocol
from agent_il.strategies.heads import ridge_features
from agent_il.strategies.ridge import REFERENCE_COUNT, RidgeStrategy

LAMBDAS = [1.0, 10.0, 100.0, 1000.0, 3000.0]
GAMMAS = [0.5, 1.0, 2.0]
SHRINKS = [0.1, 0.3, 0.5, 0.7, 0.9]
BETAS = [1.0, 2.0, 4.0]


def unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)


def heads(x: np.ndarray, y: np.ndarray, k: int, xt: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Test scores of every head family, one entry a setting."""
    out: dict[str, dict[str, np.ndarray]] = {}
    fit = LogisticRegression(max_iter=1000, C=10.0).fit(x, y)
    out["logreg (baseline)"] = {"C=10": fit.decision_function(xt)}
    shipped = RidgeStrategy()  # the default head's random features, as a learn draws them
    projection, bias = ridge_features(shipped.seed, x.shape[1], shipped.features, shipped.bias_scale, None)

    def features(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a * np.sqrt(shipped.features / a.shape[1]), np.maximum(a @ projection + bias, 0)], 1)

    h, ht = features(x), features(xt)
    weight = np.sqrt(REFERENCE_COUNT / np.bincount(y, minlength=k)[y])  # the head's class balance
    values, vectors = np.linalg.eigh((h * weight[:, None]).T @ h)
    cross = vectors.T @ ((h * weight[:, None]).T @ np.eye(k)[y])
    projected = ht @ vectors
    out["ridge"] = {f"lambda={lam:g}": projected @ (cross / (values + lam)[:, None]) for lam in LAMBDAS}
    assert shipped.ridge_lambda in LAMBDAS  # "ridge as shipped" below reads it
    cosine, test_cosine = x @ x.T, xt @ x.T
    out["kernel ridge (RBF)"] = {}
    for gamma in GAMMAS:
        kv, kvec = np.linalg.eigh(np.exp(-2 * gamma * (1 - cosine)))
        alpha = kvec @ ((kvec.T @ np.eye(k)[y]) / (kv + 1e-2)[:, None])
        out["kernel ridge (RBF)"][f"gamma={gamma:g}"] = np.exp(-2 * gamma * (1 - test_cosine)) @ alpha
    means = np.stack([x[y == j].mean(0) for j in range(k)])
    residual = x - means[y]
    within = residual.T @ residual / len(x)
    scale = np.trace(within) / x.shape[1]
    out["lda"] = {}
    for s in SHRINKS:
        w = np.linalg.solve((1 - s) * within + s * scale * np.eye(x.shape[1]), means.T)
        out["lda"][f"shrink={s:g}"] = xt @ w - 0.5 * (means * w.T).sum(1)
    nearest = unit(xt) @ unit(means).T
    out["nearest-mean"] = {"cosine": nearest}
    ridge = out["ridge"][f"lambda={shipped.ridge_lambda:g}"]
    out["ridge + nearest-mean"] = {f"beta={b:g}": ridge / ridge.std() + b * nearest / nearest.std() for b in BETAS}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--shots", default="5,10,30")
    args = parser.parse_args()
    seeds, shots = [int(s) for s in args.seeds.split(",")], [int(n) for n in args.shots.split(",")]
    results: dict[str, dict[str, dict[str, dict[str, list[float]]]]] = {}
    with datasets.Embeddings() as embed:
        for name, (train_file, test_file) in SETS.items():
            train, test = datasets.encode(datasets.read(train_file, test_file), embed)
            classes = sorted(set(train.labels.tolist()))
            index = {c: i for i, c in enumerate(classes)}
            truth = np.array([index[c] for c in test.labels])
            results[name] = {}
            for n in shots:
                got: dict[str, dict[str, list[float]]] = {}
                for seed in seeds:
                    drawn = protocol.few_shot(train, n, seed)
                    y = np.array([index[c] for c in drawn.labels])
                    for family, settings in heads(drawn.x, y, len(classes), test.x).items():
                        for setting, scores in settings.items():
                            acc = 100.0 * float((scores.argmax(1) == truth).mean())
                            got.setdefault(family, {}).setdefault(setting, []).append(acc)
                results[name][str(n)] = got
                print(name, n, {f: max(np.mean(v) for v in s.values()) for f, s in got.items()}, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "heads.json").write_text(json.dumps({"seeds": seeds, "results": results}, indent=1))
    lines = [f"Mean final accuracy over seeds {seeds}; each family at its best setting on the test split.", ""]
    for name, by_n in results.items():
        lines += [f"### {name}", "", "| head | " + " | ".join(f"{n} shots" for n in by_n) + " |"]
        lines.append("|---|" + "---|" * len(by_n))
        for family in next(iter(by_n.values())):
            cells = []
            for got in by_n.values():
                setting = max(got[family], key=lambda s: np.mean(got[family][s]))
                cells.append(f"{np.mean(got[family][setting]):.1f} ({setting})")
            lines.append(f"| {family} | " + " | ".join(cells) + " |")
        shipped = f"lambda={RidgeStrategy().ridge_lambda:g}"
        default = [f"{np.mean(got['ridge'][shipped]):.1f}" for got in by_n.values()]
        lines += [f"| ridge as shipped ({shipped}) | " + " | ".join(default) + " |", ""]
    (OUT / "heads.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
