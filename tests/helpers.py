"""Small helpers shared by the tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def records_held(learner) -> dict[str, int]:
    """How many records each store's Chroma collection holds, checking that the exemplars are
    examples (chosen from them, with no copy of their own) and that no store keeps a record the
    live state does not name (call where no snapshot names older ones)."""
    state = learner.state
    assert set(state.live("exemplars")) <= set(state.live("examples"))
    held = {store: learner.stores[store].count() for store in ("exemplars", "holdout", "examples")}
    assert held == {"exemplars": 0, "holdout": len(state.live("holdout")), "examples": len(state.live("examples"))}
    return held


def accuracy(learner, texts: list[str], labels: list[str]) -> float:
    """Closed-set accuracy: the best known intent, whether or not it was rejected as out of scope
    (tests/test_ood.py measures the rejection)."""
    preds = learner.predict(texts, k=1, evidence=0, inbox=False)
    return 100.0 * float(np.mean([p.top_k[0][0] == y for p, y in zip(preds, labels)]))


def tree_digest(root: Path, skip: tuple[str, ...] = ("cache", ".lock")) -> dict[str, str]:
    """SHA-256 of every file under ``root`` except the embedding cache and the lock file."""
    out = {}
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.is_file() and rel.parts[0] not in skip:
            out[str(rel)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def fingerprint(root: Path) -> dict[str, str]:
    """What a workspace holds: its own files byte for byte, and Chroma's records by content.

    Chroma's SQLite file itself changes whenever any process opens the store, so it is compared
    through what it holds (ids, texts, metadata, embeddings of every collection) instead."""
    import chromadb
    from chromadb.config import Settings

    out = tree_digest(root, skip=("cache", ".lock", "chroma"))
    client = chromadb.PersistentClient(path=str(root / "chroma"), settings=Settings(anonymized_telemetry=False))
    for col in client.list_collections():
        got = client.get_collection(col.name).get(include=["documents", "metadatas", "embeddings"])
        h = hashlib.sha256()
        for row in sorted(zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"]), key=lambda r: r[0]):
            h.update(repr((row[0], row[1], sorted(row[2].items()))).encode())
            h.update(np.asarray(row[3], dtype=np.float32).tobytes())
        out[f"chroma:{col.name}"] = h.hexdigest()
    return out


def resident_bytes() -> int:
    """This process's resident memory now (servers under test run in its threads)."""
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) * 1024
