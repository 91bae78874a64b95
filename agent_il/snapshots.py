"""Named, self-contained copies of a workspace: its state, head/EWC weights and every Chroma
record it names (exemplars and held-out slices), so a restore brings all of it back.

A snapshot is written to a temp directory and renamed into place, and carries the SHA-256 of
each file; a truncated or tampered snapshot is refused with a clear error, never half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as save_safetensors

from agent_il import atomic
from agent_il.errors import InvalidInputError, WorkspaceError
from agent_il.memory import Records
from agent_il.workspace import decode_tensors

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
AUTO_PREFIX = "auto-"
MANIFEST = "snapshot.json"


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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class Snapshots:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def create(
        self, name: str, created: str, state: dict[str, Any], weights: Path | None, records: dict[str, Records]
    ) -> SnapshotInfo:
        final = self.path(name)
        if final.exists():
            raise InvalidInputError(f"snapshot {name!r} already exists")
        self.root.mkdir(mode=0o700, exist_ok=True)
        tmp = self.root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(mode=0o700)
        try:
            files = {}
            if weights is not None:
                try:
                    os.link(weights, tmp / "weights.safetensors")  # weights files are immutable
                except OSError:
                    shutil.copyfile(weights, tmp / "weights.safetensors")
                files["weights.safetensors"] = _sha256(tmp / "weights.safetensors")
            tensors = {k: torch.from_numpy(np.ascontiguousarray(r.x, dtype=np.float32)) for k, r in records.items()}
            meta = {k: {"ids": r.ids, "texts": r.texts, "metadatas": r.metadatas} for k, r in records.items()}
            _write(tmp / "records.safetensors", save_safetensors(tensors))
            _write(tmp / "records.json", json.dumps(meta, ensure_ascii=False).encode())
            for f in ("records.safetensors", "records.json"):
                files[f] = _sha256(tmp / f)
            manifest = {"name": name, "created": created, "state": state, "files": files}
            _write(tmp / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False).encode())
            atomic.fsync_dir(tmp)
            os.rename(tmp, final)
            atomic.fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self._info(final)

    def _manifest(self, path: Path) -> dict[str, Any]:
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            if not isinstance(manifest, dict) or not {"name", "created", "state", "files"} <= set(manifest):
                raise ValueError("fields missing")
            return manifest
        except FileNotFoundError:
            raise InvalidInputError(f"no snapshot named {path.name!r}") from None
        except (OSError, ValueError) as exc:
            raise WorkspaceError(f"snapshot {path.name!r} is damaged: {exc}") from exc

    def _info(self, path: Path) -> SnapshotInfo:
        m = self._manifest(path)
        state = m["state"]
        return SnapshotInfo(
            name=m["name"],
            created=m["created"],
            generation=int(state["generation"]),
            classes=len(state["labels"]),
            tasks=len(state["tasks"]),
            exemplars=sum(len(ids) for ids in state["exemplars"].values()),
            auto=m["name"].startswith(AUTO_PREFIX),
            bytes=sum(f.stat().st_size for f in path.iterdir()),
        )

    def list(self) -> list[SnapshotInfo]:
        if not self.root.is_dir():
            return []
        found = [self._info(p) for p in self.root.iterdir() if p.is_dir() and NAME.fullmatch(p.name)]
        return sorted(found, key=lambda s: (s.created, s.generation, s.name))

    def auto_names(self) -> list[str]:
        """Automatic snapshots, oldest first (their names carry a zero-padded generation)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.name.startswith(AUTO_PREFIX) and p.is_dir())

    def load(self, name: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Records]]:
        """Verify every file against the manifest, then return (state, weights, records)."""
        path = self.path(name)
        manifest = self._manifest(path)
        for fname, digest in manifest["files"].items():
            f = path / fname
            if not f.is_file() or _sha256(f) != digest:
                raise WorkspaceError(f"snapshot {name!r} is damaged: {fname} is missing or does not match its checksum")
        try:
            weights = {}
            if "weights.safetensors" in manifest["files"]:
                weights = decode_tensors((path / "weights.safetensors").read_bytes())
            arrays = decode_tensors((path / "records.safetensors").read_bytes())
            meta = json.loads((path / "records.json").read_text(encoding="utf-8"))
            records = {k: Records(m["ids"], arrays[k].numpy(), m["texts"], m["metadatas"]) for k, m in meta.items()}
        except Exception as exc:
            raise WorkspaceError(f"snapshot {name!r} is damaged: {exc}") from exc
        return manifest["state"], weights, records

    def delete(self, name: str) -> None:
        path = self.path(name)
        if not path.is_dir():
            raise InvalidInputError(f"no snapshot named {name!r}")
        trash = self.root / f".trash-{name}-{uuid.uuid4().hex[:8]}"
        os.rename(path, trash)  # gone at once for readers; the rest is cleanup
        shutil.rmtree(trash, ignore_errors=True)

    def clean(self) -> None:
        """Remove what interrupted creates and deletes left behind."""
        if self.root.is_dir():
            for p in self.root.glob(".*-*"):
                shutil.rmtree(p, ignore_errors=True)
