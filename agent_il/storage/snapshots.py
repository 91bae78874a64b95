"""Named, self-contained copies of a workspace: its state, head/EWC weights and every Chroma
record it names (exemplars, held-out slices), so a restore brings all of it back.

A snapshot is two blobs: ``snapshots/<name>-<id>.safetensors`` (the records) and, written last
as its commit point, ``snapshots/<name>.json`` (the state, and the SHA-256 of the records and
of the weights, which it shares with the workspace instead of copying). A truncated or tampered
snapshot is refused with a clear error, never half-loaded.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from agent_il.errors import InvalidInputError, WorkspaceError
from agent_il.memory.records import Records
from agent_il.storage.base import decode_tensors, encode_tensors
from agent_il.storage.blobs import Blobs, sha256

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
AUTO_PREFIX = "auto-"


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created: str
    generation: int
    classes: int
    tasks: int
    exemplars: int
    auto: bool
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInputError(
            f"bad snapshot name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


PREFIX = "snapshots/"


def _manifest_key(name: str) -> str:
    return f"{PREFIX}{check_name(name)}.json"


class Snapshots:
    def __init__(self, blobs: Blobs) -> None:
        self.blobs = blobs

    def save(self, name: str, created: str, state: dict[str, Any], records: dict[str, Records]) -> SnapshotInfo | None:
        """Save a snapshot of ``state`` (whose weights blob it shares) and its ``records``;
        None if one of that name exists or appeared meanwhile (a racing writer's)."""
        key = _manifest_key(name)
        if key in self.blobs.keys(key):
            return None
        tensors = {k: torch.from_numpy(np.ascontiguousarray(r.x, dtype=np.float32)) for k, r in records.items()}
        meta = {k: {"ids": r.ids, "texts": r.texts, "metadatas": r.metadatas} for k, r in records.items()}
        data = encode_tensors(tensors)
        body = json.dumps(meta, ensure_ascii=False).encode()
        data_key = f"{PREFIX}{name}-{uuid.uuid4().hex[:8]}.safetensors"
        self.blobs.put(data_key, data)
        self.blobs.put(data_key.replace(".safetensors", ".records"), body)
        manifest = {
            "name": name,
            "created": created,
            "state": state,
            "files": {
                data_key: sha256(data),
                data_key.replace(".safetensors", ".records"): sha256(body),
                **({state["weights"]: state["weights_sha256"]} if state["weights"] else {}),
            },
        }
        blob = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
        if not self.blobs.put(key, blob, exclusive=True):
            self._delete_files(manifest)
            return None
        return self._info(manifest)

    def _manifest(self, name: str) -> dict[str, Any]:
        key = _manifest_key(name)
        if key not in self.blobs.keys(key):
            raise InvalidInputError(f"no snapshot named {name!r}")
        try:
            manifest = json.loads(self.blobs.get(key))
            if not isinstance(manifest, dict) or not {"name", "created", "state", "files"} <= set(manifest):
                raise ValueError("fields missing")
            return manifest
        except (WorkspaceError, ValueError) as exc:
            raise WorkspaceError(f"snapshot {name!r} is damaged: {exc}") from exc

    def _info(self, m: dict[str, Any]) -> SnapshotInfo:
        state = m["state"]
        sizes = 0
        for key in m["files"]:
            try:
                sizes += self.blobs.size(key)
            except (OSError, WorkspaceError):
                pass  # reported as damaged when loaded
        return SnapshotInfo(
            name=m["name"],
            created=m["created"],
            generation=int(state["generation"]),
            classes=len(state["labels"]),
            tasks=len(state["tasks"]),
            exemplars=sum(len(ids) for ids in state["exemplars"].values()),
            auto=m["name"].startswith(AUTO_PREFIX),
            bytes=sizes,
        )

    def names(self) -> list[str]:
        return [k[len(PREFIX) : -len(".json")] for k in self.blobs.keys(PREFIX) if _is_manifest(k)]

    def manifests(self) -> list[dict[str, Any]]:
        return [self._manifest(n) for n in self.names()]

    def list(self) -> list[SnapshotInfo]:
        found = [self._info(m) for m in self.manifests()]
        return sorted(found, key=lambda s: (s.created, s.generation, s.name))

    def auto_names(self) -> list[str]:
        """Automatic snapshots, oldest first (their names carry a zero-padded generation)."""
        return sorted(n for n in self.names() if n.startswith(AUTO_PREFIX))

    def load(self, name: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Records]]:
        """Verify every blob against the manifest, then return (state, weights, records)."""
        manifest = self._manifest(name)
        data = {}
        for key, digest in manifest["files"].items():
            try:
                data[key] = self.blobs.get(key)
            except WorkspaceError:
                raise WorkspaceError(f"snapshot {name!r} is damaged: {key} is missing") from None
            if sha256(data[key]) != digest:
                raise WorkspaceError(f"snapshot {name!r} is damaged: {key} does not match its checksum")
        try:
            weights_key = manifest["state"]["weights"]
            weights = decode_tensors(data[weights_key]) if weights_key else {}
            arrays_key = next(k for k in data if k.endswith(".safetensors") and k.startswith(PREFIX))
            arrays = decode_tensors(data[arrays_key])
            meta = json.loads(data[arrays_key.replace(".safetensors", ".records")])
            records = {k: Records(m["ids"], arrays[k].numpy(), m["texts"], m["metadatas"]) for k, m in meta.items()}
        except Exception as exc:
            raise WorkspaceError(f"snapshot {name!r} is damaged: {exc}") from exc
        return manifest["state"], weights, records

    def delete(self, name: str) -> None:
        manifest = self._manifest(name)
        self.blobs.delete(_manifest_key(name))  # gone at once for readers; the rest is cleanup
        self._delete_files(manifest)

    def _delete_files(self, manifest: dict[str, Any]) -> None:
        for key in manifest["files"]:
            if key.startswith(PREFIX):
                self.blobs.delete(key)

    def tidy(self, min_age: float = 0.0) -> tuple[list[str], set[str]]:
        """One read of the manifests for the cleanup after a write: delete snapshot files no
        manifest names (left by a killed create or delete) once older than ``min_age`` seconds,
        so a create in progress elsewhere is left alone; return them and the weights blobs the
        snapshots still use."""
        manifests = self.manifests()
        named = {k for m in manifests for k in m["files"]}
        removed = []
        for key in self.blobs.keys(PREFIX):
            if not _is_manifest(key) and key not in named and self.blobs.age(key) >= min_age:
                self.blobs.delete(key)
                removed.append(key)
        return removed, {m["state"]["weights"] for m in manifests if m["state"]["weights"]}


def _is_manifest(key: str) -> bool:
    return key.endswith(".json")
