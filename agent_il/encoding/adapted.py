"""Encoders a workspace adapted to its own examples (consolidation), kept inside the workspace.

An adapted encoder is one safetensors blob in the workspace's blob store (a local directory, or a
Chroma server shared by every agent): the tuned layers' tensors, with the base model and the run
named in its metadata. Its model id points at that blob, ``workspace:encoders/<space>/<sha>``, so a
state names its encoder like any model and a snapshot versions it. To run it, the blob is laid
over its base model once per machine into a sentence-transformers folder in the user cache,
checked against the blob's SHA-256 (a folder from another blob is made again)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_il.encoding.cache import user_cache
from agent_il.errors import DamagedError, WorkspaceError
from agent_il.state import ENCODERS as FOLDER
from agent_il.storage.atomic import fsync_dir
from agent_il.storage.blobs import sha256

if TYPE_CHECKING:
    import torch

log = logging.getLogger("agent_il")
PREFIX = "workspace:"
FORMAT = 1
_MARK = "agent-il-adapted.json"


def is_adapted(model_id: str) -> bool:
    return model_id.startswith(PREFIX)


def model_id(space: str, data: bytes) -> str:
    """The id of the adapted encoder ``data`` (its blob), stored in ``space``'s folder."""
    return f"{PREFIX}{FOLDER}/{space}/{sha256(data)[:32]}.safetensors"


def blob_key(model: str) -> str:
    if not is_adapted(model):
        raise WorkspaceError(f"{model!r} is not an adapted encoder's id")
    return model[len(PREFIX) :]


def space_prefix(space: str) -> str:
    """Blob keys of the encoders adapted in ``space`` (deleted with it)."""
    return f"{FOLDER}/{space}/"


def pack(tensors: dict[str, torch.Tensor], base: str, info: dict[str, Any]) -> bytes:
    from safetensors.torch import save

    meta = {"format": str(FORMAT), "base": base, "info": json.dumps(info, sort_keys=True)}
    return save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta)


def unpack(data: bytes, where: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and metadata of an adapted encoder's blob (checked: format, base, names)."""
    from safetensors.torch import load

    try:
        tensors = load(data)
        size = int.from_bytes(data[:8], "little")  # the format: a u64 header length, then JSON
        meta = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
        info = json.loads(meta.get("info", "{}"))
    except Exception as exc:
        raise DamagedError(f"{where} is not an adapted encoder: {exc}") from exc
    if meta.get("format") != str(FORMAT) or not meta.get("base") or not tensors:
        raise DamagedError(f"{where} is not an adapted encoder of format {FORMAT}")
    return tensors, {"base": meta["base"], **info}


def base_of(model: str, read: Callable[[str], bytes]) -> str:
    """The model an encoder was adapted from (itself when it is not an adapted one)."""
    if not is_adapted(model):
        return model
    return unpack(read(blob_key(model)), model)[1]["base"]


def folder(model: str) -> Path:
    return user_cache() / FOLDER / blob_key(model).rsplit("/", 1)[-1].removesuffix(".safetensors")


def materialised(model: str) -> Path:
    """The runnable folder of an adapted encoder, which :func:`ensure` must have made."""
    path = folder(model)
    if not (path / _MARK).is_file():
        raise WorkspaceError(f"the adapted encoder {model} is not on this machine; open its workspace to fetch it")
    return path


def ensure(model: str, read: Callable[[str], bytes]) -> Path:
    """A sentence-transformers folder of the adapted encoder ``model``, made from its blob
    (``read(key)``) over its base model unless a checked one is already here."""
    path = folder(model)
    key = blob_key(model)
    digest = key.rsplit("/", 1)[-1].removesuffix(".safetensors")
    try:
        if json.loads((path / _MARK).read_text())["sha256"].startswith(digest):
            return path
    except (OSError, ValueError, KeyError, TypeError):
        pass
    data = read(key)
    if not sha256(data).startswith(digest):
        raise DamagedError(f"the adapted encoder {model} does not match its checksum")
    tensors, meta = unpack(data, model)
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
        (tmp / _MARK).write_text(json.dumps({"sha256": sha256(data), "base": meta["base"]}))
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("adapted encoder %s laid over %s in %s", model, meta["base"], path)
    return path
