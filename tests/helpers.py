"""Small helpers shared by the tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def accuracy(learner, texts: list[str], labels: list[str]) -> float:
    preds = learner.predict(texts, k=1, evidence=0)
    return 100.0 * float(np.mean([p.label == y for p, y in zip(preds, labels)]))


def tree_digest(root: Path, skip: tuple[str, ...] = ("cache", ".lock")) -> dict[str, str]:
    """SHA-256 of every file under ``root`` except the embedding cache and the lock file."""
    out = {}
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.is_file() and rel.parts[0] not in skip:
            out[str(rel)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out
