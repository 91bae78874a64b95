"""Where a workspace lives, and its single commit point.

A workspace is a state record (metadata, label map, tasks, live record ids, the weights key),
immutable blobs (head + EWC weights per generation, snapshots) and Chroma collections (the
exemplar memory / knowledge base, held-out slices, the inbox). Two places hold one:

- :class:`agent_il.storage.local.LocalWorkspace`, a directory with an embedded Chroma, owned by one
  process at a time;
- :class:`agent_il.storage.chroma_server.ServerWorkspace`, collections on a Chroma server shared by many
  processes on many hosts, where the commit point is a compare-and-set on a versioned record.

A commit writes the new generation's weights blob, then publishes the new state; a crash before
the publish leaves the old state in force, after it the new one.
"""

from __future__ import annotations

import abc
import contextlib
import uuid
from pathlib import Path
from typing import Any

from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from agent_il.errors import WorkspaceError
from agent_il.state import SCHEMA_VERSION
from agent_il.storage.blobs import Blobs, sha256

STATE_FILE = "state.json"
KEEP_GENERATIONS = 3  # weights of the newest generations stay readable for readers a step behind


class Conflict(WorkspaceError):
    """Another writer committed first; the operation is recomputed on top of its state."""


def decode_tensors(data: bytes) -> dict[str, Tensor]:
    """Tensors from safetensors bytes (never pickle), raising on truncated or malformed data."""
    return load_safetensors(data)


def encode_tensors(tensors: dict[str, Tensor]) -> bytes:
    return save_safetensors({k: v.contiguous() for k, v in tensors.items()})


def check_schema(state: Any, where: str) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("schema") != SCHEMA_VERSION:
        found = state.get("schema") if isinstance(state, dict) else None
        raise WorkspaceError(f"{where} has schema {found!r}; this agent-il reads {SCHEMA_VERSION}")
    return state


def weights_generation(key: str) -> int:
    return int(Path(key).name.split("-", 1)[0].split(".", 1)[0])


class Workspace(abc.ABC):
    """What both kinds of workspace share: weights as blobs, generations, garbage collection."""

    location: str
    blobs: Blobs
    client: Any
    shared: bool  # True where other processes may commit at any time (server mode)

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether a workspace was created here (opening never creates one by accident)."""

    @abc.abstractmethod
    def create(self, state: dict[str, Any]) -> None:
        """Publish ``state`` as generation 0."""

    @abc.abstractmethod
    def read_state(self) -> dict[str, Any]:
        """The newest committed state."""

    def latest_generation(self) -> int:
        return int(self.read_state()["generation"])

    @abc.abstractmethod
    def _publish(self, state: dict[str, Any]) -> None:
        """Make ``state`` the current one, or raise :class:`Conflict` if its generation is taken."""

    @abc.abstractmethod
    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Held around every change made by this process."""

    @abc.abstractmethod
    def collection(self, store: str) -> str:
        """The Chroma collection that holds ``store`` (exemplars, holdout, inbox)."""

    @abc.abstractmethod
    def cache_path(self, model_id: str) -> Path | None:
        """Where this host keeps text -> embedding caches for ``model_id``."""

    @abc.abstractmethod
    def size_bytes(self) -> int:
        """What the workspace occupies (files on disk, or its blobs on a server)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Let other processes open the workspace."""

    @abc.abstractmethod
    def clean_temporary(self, older_than: float = 0.0) -> int:
        """Remove what interrupted writes left behind (once ``older_than`` seconds old where other
        processes may be writing); returns how many."""

    def initial_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "schema": SCHEMA_VERSION, "generation": 0, "weights": None}

    def read_tensors(self, state: dict[str, Any]) -> dict[str, Tensor]:
        if state["weights"] is None:
            return {}
        try:
            return decode_tensors(self.blobs.get(state["weights"]))
        except WorkspaceError:
            raise
        except Exception as exc:  # truncated or tampered
            raise WorkspaceError(f"cannot read weights {state['weights']} of {self.location}: {exc}") from exc

    def commit(self, state: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
        """Persist a new generation (no weights blob when nothing is learned); returns the state."""
        generation = int(state["generation"]) + 1
        key = digest = None
        if tensors:
            key = f"weights/{generation:08d}-{uuid.uuid4().hex[:8]}.safetensors"
            data = encode_tensors(tensors)
            self.blobs.put(key, data)
            digest = sha256(data)  # snapshots share this blob and check it against the digest
        new_state = {**state, "generation": generation, "weights": key, "weights_sha256": digest}
        try:
            self._publish(new_state)
        except BaseException:
            if key is not None:
                self.blobs.delete(key)
            raise
        return new_state

    def collect_garbage(self, state: dict[str, Any], keep: set[str]) -> list[str]:
        """Delete weights that neither the state, ``keep`` (snapshots) nor a recent generation
        names; a concurrent writer's uncommitted weights are newer than the state, so they stay."""
        floor = int(state["generation"]) - (KEEP_GENERATIONS if self.shared else 0)
        dropped = []
        for key in self.blobs.keys("weights/"):
            if key != state["weights"] and key not in keep and weights_generation(key) <= floor:
                self.blobs.delete(key)
                dropped.append(key)
        return dropped
