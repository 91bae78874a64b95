"""On-disk layout of a workspace and its single commit point.

    state.json                  metadata, label map, tasks, live exemplar ids (the commit point)
    weights/<generation>.safetensors   head + EWC state of that generation (immutable once written)
    chroma/                     the embedded Chroma store (exemplar memory / knowledge base)
    cache/                      text -> embedding caches, one per model (safe to delete)
    .lock                       held by whoever writes

A commit writes the new generation's weights file, then atomically replaces ``state.json``;
a crash before the rename leaves the old state in force, after it the new one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from agent_il import atomic
from agent_il.errors import WorkspaceError

SCHEMA_VERSION = 1
STATE_FILE = "state.json"


def decode_tensors(data: bytes) -> dict[str, Tensor]:
    """Tensors from safetensors bytes (never pickle), raising on truncated or malformed data."""
    return load_safetensors(data)


class Workspace:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.state_path = self.root / STATE_FILE
        self.weights_dir = self.root / "weights"
        self.chroma_dir = self.root / "chroma"
        self.cache_dir = self.root / "cache"

    def exists(self) -> bool:
        return self.state_path.is_file()

    def create(self, state: dict[str, Any]) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"{self.root} exists and is not a directory")
        if self.root.is_dir() and any(self.root.iterdir()) and not self.exists():
            raise WorkspaceError(f"{self.root} is a non-empty directory that is not an agent-il workspace")
        for d in (self.root, self.weights_dir, self.chroma_dir, self.cache_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic.write_json(self.state_path, {**state, "schema": SCHEMA_VERSION, "generation": 0, "weights": None})

    def lock(self, timeout: float = 60.0) -> FileLock:
        return FileLock(str(self.root / ".lock"), timeout=timeout)

    def read_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WorkspaceError(f"no agent-il workspace at {self.root}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"{self.state_path} is unreadable: {exc}") from exc
        if not isinstance(state, dict) or state.get("schema") != SCHEMA_VERSION:
            found = state.get("schema") if isinstance(state, dict) else None
            raise WorkspaceError(f"{self.state_path} has schema {found!r}; this agent-il reads {SCHEMA_VERSION}")
        return state

    def read_tensors(self, state: dict[str, Any]) -> dict[str, Tensor]:
        if state["weights"] is None:
            return {}
        path = self.root / state["weights"]
        try:
            return decode_tensors(path.read_bytes())
        except Exception as exc:  # missing, truncated or tampered file
            raise WorkspaceError(f"cannot read weights {path}: {exc}") from exc

    def commit(self, state: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
        """Persist a new generation (no weights file when nothing is learned); returns the state."""
        generation = int(state["generation"]) + 1
        rel = None
        if tensors:
            rel = f"weights/{generation:08d}.safetensors"
            data = save_safetensors({k: v.contiguous() for k, v in tensors.items()})
            atomic.write_bytes(self.root / rel, data)
        new_state = {**state, "generation": generation, "weights": rel}
        atomic.write_json(self.state_path, new_state)
        self.collect_garbage(new_state)
        return new_state

    def collect_garbage(self, state: dict[str, Any]) -> None:
        """Remove weights no state names and temp files of interrupted writes."""
        keep = {state["weights"]}
        for f in self.weights_dir.glob("*.safetensors"):
            if f"weights/{f.name}" not in keep:
                f.unlink(missing_ok=True)
        atomic.remove_stale_temp_files(self.weights_dir)
        atomic.remove_stale_temp_files(self.root)

    def cache_path(self, model_id: str) -> Path:
        return self.cache_dir / f"{hashlib.sha256(model_id.encode()).hexdigest()[:16]}.sqlite"


__all__ = ["SCHEMA_VERSION", "Timeout", "Workspace", "decode_tensors"]
