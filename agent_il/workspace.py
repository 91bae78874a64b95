"""Where a workspace lives, and its single commit point.

A workspace is a state record (metadata, label map, tasks, live record ids, the weights key),
immutable blobs (head + EWC weights per generation, snapshots) and Chroma collections (the
exemplar memory / knowledge base, held-out slices, the inbox). Two places hold one:

- :class:`LocalWorkspace`, a directory with an embedded Chroma, owned by one process at a time::

      state.json                       the commit point, replaced atomically
      weights/<generation>-<id>.safetensors
      snapshots/<name>.json, <name>.safetensors
      chroma/                          the embedded Chroma store
      cache/                           text -> embedding caches (safe to delete)
      .lock                            held by the process that has the workspace open

- :class:`agent_il.server.ServerWorkspace`, collections on a Chroma server shared by many
  processes on many hosts, where the commit point is a compare-and-set on a versioned record.

A commit writes the new generation's weights blob, then publishes the new state; a crash before
the publish leaves the old state in force, after it the new one.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from filelock import FileLock, Timeout
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from agent_il import atomic
from agent_il.blobs import Blobs, DirectoryBlobs, sha256
from agent_il.errors import WorkspaceError

SCHEMA_VERSION = 1
STATE_FILE = "state.json"
KEEP_GENERATIONS = 3  # weights of the newest generations stay readable for readers a step behind


class WorkspaceBusyError(WorkspaceError):
    """Another process has this embedded workspace open."""


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


class LocalWorkspace(Workspace):
    """A directory with an embedded Chroma. Embedded Chroma is not safe for two processes, so
    the process that opens the workspace holds ``.lock`` until it closes it; threads of that
    process share it and take turns to write."""

    shared = False
    _owners: ClassVar[dict[Path, list[Any]]] = {}  # root -> [file lock, open count, thread lock]
    _owners_lock = threading.Lock()

    def __init__(self, root: str | os.PathLike[str], wait: float = 0.0) -> None:
        self.root = Path(root).expanduser().resolve()
        self.location = str(self.root)
        self.state_path = self.root / STATE_FILE
        self.blobs = DirectoryBlobs(self.root)
        self._wait = wait
        self._owned = False
        self._client: Any = None

    # The lock is taken on first use, so a missing workspace can be reported without creating it.
    def _own(self) -> None:
        if self._owned:
            return
        with self._owners_lock:
            entry = self._owners.get(self.root)
            if entry is None:
                lock = FileLock(str(self.root / ".lock"), timeout=self._wait, mode=0o600, thread_local=False)
                try:
                    lock.acquire()
                except Timeout:
                    raise WorkspaceBusyError(
                        f"{self.root} is open in another process ({self._holder()}). An embedded workspace "
                        "serves one process at a time: wait for it to finish (AGENT_IL_WAIT=SECONDS), or "
                        "share the knowledge base through a Chroma server (--chroma-url, see the README)"
                    ) from None
                atomic.write_bytes(self.root / ".owner", f"{os.getpid()}\n".encode())
                entry = self._owners[self.root] = [lock, 0, threading.RLock()]
            entry[1] += 1
            self._owned = True

    def _holder(self) -> str:
        try:
            return f"pid {int((self.root / '.owner').read_text())}"
        except (OSError, ValueError):
            return "pid unknown"

    def close(self) -> None:
        if self._client is not None:  # Chroma caches a store per path: drop it, or a later open
            self._client.close()  # in this process would see it as it was, not as others left it
            self._client = None
        if not self._owned:
            return
        with self._owners_lock:
            entry = self._owners[self.root]
            entry[1] -= 1
            if entry[1] == 0:
                del self._owners[self.root]
                entry[0].release()
            self._owned = False

    @property
    def client(self) -> Any:  # type: ignore[override]
        if self._client is None:
            self._own()
            import chromadb
            from chromadb.config import Settings

            self._client = chromadb.PersistentClient(
                path=str(self.root / "chroma"), settings=Settings(anonymized_telemetry=False)
            )
        return self._client

    def exists(self) -> bool:
        return self.state_path.is_file()

    def create(self, state: dict[str, Any]) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"{self.root} exists and is not a directory")
        if self.root.is_dir() and any(self.root.iterdir()) and not self.exists():
            raise WorkspaceError(f"{self.root} is a non-empty directory that is not an agent-il workspace")
        for d in ("", "weights", "snapshots", "chroma", "cache"):
            (self.root / d).mkdir(mode=0o700, parents=True, exist_ok=True)
        self._own()
        atomic.write_json(self.state_path, self.initial_state(state))

    def read_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WorkspaceError(f"no agent-il workspace at {self.root}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"{self.state_path} is unreadable: {exc}") from exc
        return check_schema(state, str(self.state_path))

    def _publish(self, state: dict[str, Any]) -> None:
        atomic.write_json(self.state_path, state)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        self._own()
        with self._owners[self.root][2]:
            yield

    def collection(self, store: str) -> str:
        return store

    def clean_temporary(self, older_than: float = 0.0) -> int:
        return self.blobs.clean(["", "weights", "snapshots"])

    def cache_path(self, model_id: str) -> Path:
        return self.root / "cache" / f"{hashlib.sha256(model_id.encode()).hexdigest()[:16]}.sqlite"

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())


__all__ = [
    "SCHEMA_VERSION",
    "Conflict",
    "LocalWorkspace",
    "Workspace",
    "WorkspaceBusyError",
    "decode_tensors",
    "encode_tensors",
]
