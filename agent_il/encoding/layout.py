"""Laying out a workspace's adapted encoder on this machine: its blob over its base model, saved
as a sentence-transformers folder in the user cache that every backend loads like any model."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from agent_il.encoding import adapted
from agent_il.errors import DamagedError
from agent_il.storage.atomic import fsync_dir
from agent_il.storage.blobs import sha256

log = logging.getLogger("agent_il")


def ensure(model: str, read: Callable[[str], bytes]) -> Path:
    """A sentence-transformers folder of the adapted encoder ``model``, made from its blob
    (``read(key)``) over its base model unless a checked one is already here."""
    path, digest = adapted.folder(model), adapted.digest(model)
    if _laid_out(path, digest):
        return path
    data = read(adapted.blob_key(model))
    adapted.check(model, lambda _: data)
    tensors, meta = adapted.unpack(data, model)
    from agent_il.encoding.sbert import load_sentence_transformer

    st = load_sentence_transformer(meta["base"], "cpu")
    target = st[0].auto_model
    missing = sorted(set(tensors) - set(target.state_dict()))
    if missing:
        raise DamagedError(f"the adapted encoder {model} names tensors its base model lacks: {missing[:3]}")
    target.load_state_dict(tensors, strict=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".tmp-"))
    try:
        st.save(str(tmp))
        (tmp / adapted.MARK).write_text(json.dumps({"sha256": sha256(data), "base": meta["base"]}))
        shutil.rmtree(path, ignore_errors=True)
        try:
            tmp.rename(path)
        except OSError:
            if not _laid_out(path, digest):  # else another process laid it out first
                raise
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("adapted encoder %s laid over %s in %s", model, meta["base"], path)
    return path


def _laid_out(path: Path, digest: str) -> bool:
    try:
        return str(json.loads((path / adapted.MARK).read_text())["sha256"]).startswith(digest)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def forget(key: str) -> None:
    """Delete this machine's layout of the adapted encoder stored under blob ``key``, and its
    ONNX exports (each a copy of the model: a workspace that consolidates often would pile them up)."""
    from agent_il.encoding import export

    model = adapted.PREFIX + key
    shutil.rmtree(adapted.folder(model), ignore_errors=True)
    for backend in export.VARIANTS:
        shutil.rmtree(export.folder_of(model, backend), ignore_errors=True)
