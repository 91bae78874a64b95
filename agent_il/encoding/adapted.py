"""Encoders a workspace adapted to its own examples (consolidation), kept inside the workspace.

An adapted encoder is one safetensors blob in the workspace's blob store (a local directory, or a
Chroma server shared by every agent): the tuned layers' tensors, with the base model and the run
named in its metadata. Its model id points at that blob, ``workspace:encoders/<space>/<sha>``, so a
state names its encoder like any model and a snapshot versions it. To run it, the blob is laid
over its base model once per machine into a sentence-transformers folder in the user cache,
checked against the blob's SHA-256 (a folder from another blob is made again)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_il.encoding.cache import user_cache
from agent_il.errors import DamagedError, WorkspaceError
from agent_il.state import ENCODERS as FOLDER
from agent_il.storage.blobs import sha256

if TYPE_CHECKING:
    import torch

PREFIX = "workspace:"
FORMAT = 1
MARK = "agent-il-adapted.json"  # written last into a laid-out folder: its blob's SHA-256


def is_adapted(model_id: str) -> bool:
    return model_id.startswith(PREFIX)


def model_id(space: str, data: bytes) -> str:
    """The id of the adapted encoder ``data`` (its blob), stored in ``space``'s folder."""
    return f"{PREFIX}{FOLDER}/{space}/{sha256(data)[:32]}.safetensors"


def blob_key(model: str) -> str:
    if not is_adapted(model):
        raise WorkspaceError(f"{model!r} is not an adapted encoder's id")
    return model[len(PREFIX) :]


def digest(model: str) -> str:
    """The leading hex digits of the blob's SHA-256 that the id carries."""
    return blob_key(model).rsplit("/", 1)[-1].removesuffix(".safetensors")


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


def check(model: str, read: Callable[[str], bytes]) -> bool:
    """True, or an error unless ``model``, when it is an adapted encoder, has its blob whole."""
    if is_adapted(model):
        if not sha256(read(blob_key(model))).startswith(digest(model)):
            raise DamagedError(f"the adapted encoder {model} does not match its checksum")
    return True


def base_of(model: str, read: Callable[[str], bytes]) -> str:
    """The model an encoder was adapted from (itself when it is not an adapted one)."""
    if not is_adapted(model):
        return model
    return unpack(read(blob_key(model)), model)[1]["base"]


def folder(model: str) -> Path:
    return user_cache() / FOLDER / digest(model)


def materialised(model: str) -> Path:
    """The runnable folder of an adapted encoder, which :func:`agent_il.encoding.layout.ensure`
    must have made."""
    path = folder(model)
    if not (path / MARK).is_file():
        raise WorkspaceError(f"the adapted encoder {model} is not on this machine; open its workspace to fetch it")
    return path
