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
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from agent_il.encoding import layout
from agent_il.errors import DamagedError, InvalidInputError, WorkspaceError
from agent_il.memory.store import RecordStore
from agent_il.state import ENCODERS, READABLE_SCHEMAS, SCHEMA_VERSION, SPACE, STORES
from agent_il.storage.blobs import Blobs, sha256
from agent_il.storage.journal import Journal

STATE_FILE = "state.json"
KEEP_GENERATIONS = 3  # weights of the newest generations stay readable for readers a step behind


class Conflict(WorkspaceError):
    """Another writer committed first; the operation is recomputed on top of its state."""


Arrays = dict[str, np.ndarray]


def decode_tensors(data: bytes) -> Arrays:
    """Arrays from safetensors bytes (never pickle), raising on truncated or malformed data. numpy,
    not torch: a predict reads a generation without importing torch."""
    return load_safetensors(data)


def encode_tensors(tensors: dict[str, Any]) -> bytes:
    """safetensors bytes of numpy arrays or CPU torch tensors (the same bytes either way)."""
    return save_safetensors({k: np.ascontiguousarray(v) for k, v in tensors.items()})


def check_schema(state: Any, where: str) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("schema") not in READABLE_SCHEMAS:
        found = state.get("schema") if isinstance(state, dict) else None
        raise WorkspaceError(f"{where} has schema {found!r}; this agent-il reads {READABLE_SCHEMAS}")
    return state


def new_space() -> str:
    """A fresh space: the time it was made (hex seconds, so a leftover's age can be read off its
    name) and a random part."""
    return f"{int(time.time()):08x}{uuid.uuid4().hex[:6]}"


def space_age(space: str) -> float:
    """Seconds since ``space`` was made (the original space, "", is the oldest)."""
    return time.time() - int(space[:8], 16) if space else float("inf")


def weights_generation(key: str) -> int:
    return int(Path(key).name.split("-", 1)[0].split(".", 1)[0])


class Workspace(abc.ABC):
    """What both kinds of workspace share: weights as blobs, generations, garbage collection."""

    location: str
    blobs: Blobs
    client: Any
    shared: bool  # True where other processes may commit at any time (server mode)
    journal: Journal | None = None  # a copy of every record, where the Chroma store can be lost alone

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

    def set_aside_store(self) -> str:
        """Move a damaged Chroma store aside, renamed and kept, so that a new one can be made
        (``doctor --repair``); returns where it went. Only an embedded workspace can."""
        raise InvalidInputError("a Chroma server's own storage is its operator's to repair")

    def replace_state(self, state: dict[str, Any]) -> None:
        """Publish ``state`` whatever the one on record (which may be unreadable): ``doctor
        --repair``. Its generation must be above every one used before."""
        self._publish(state)

    @abc.abstractmethod
    def _publish(self, state: dict[str, Any]) -> None:
        """Make ``state`` the current one, or raise :class:`Conflict` if its generation is taken."""

    @abc.abstractmethod
    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Held around every change made by this process."""

    @abc.abstractmethod
    def collection(self, store: str, space: str = "") -> str:
        """The Chroma collection that holds ``store`` (exemplars, holdout, examples, inbox) of
        ``space`` (a state's encoder: a collection holds vectors of one dimension)."""

    def collections(self) -> list[str]:
        """The names of the Chroma collections of this workspace (and maybe others': filtered by
        name where it matters)."""
        return [c.name for c in self.client.list_collections()]

    def _made(self, kind: str) -> dict[str, Any]:
        return self.__dict__.setdefault(kind, {})  # per instance, whichever subclass

    def record_stores(self, space: str = "") -> dict[str, RecordStore]:
        """The record stores a commit names, of ``space`` (made once per process: each keeps the
        rows it has read); the exemplar store reads the exemplars that are examples (every one a
        learn chose since examples are kept) from the examples store."""
        made = self._made("_stores")
        if space not in made:
            examples = RecordStore(self.client, self.collection("examples", space))
            made[space] = {
                "exemplars": RecordStore(self.client, self.collection("exemplars", space), fallback=examples),
                "holdout": RecordStore(self.client, self.collection("holdout", space)),
                "examples": examples,
            }
        return made[space]

    def inbox_store(self, space: str = "") -> RecordStore:
        """The inbox of ``space`` (kept apart from the stores a commit names)."""
        made = self._made("_inboxes")
        if space not in made:
            made[space] = RecordStore(self.client, self.collection("inbox", space))
        return made[space]

    def spaces(self) -> set[str]:
        """Every space that has a collection or an adapted encoder here."""
        names = {self.collection(store): store for store in (*STORES, "inbox")}
        found = {k.split("/")[1] for k in self.blobs.keys(f"{ENCODERS}/") if k.count("/") == 2}
        for name in self.collections():
            for base in names:
                if name == base:
                    found.add("")
                elif name.startswith(f"{base}.") and SPACE.fullmatch(name[len(base) + 1 :]):
                    found.add(name[len(base) + 1 :])
        return found

    def drop_space(self, space: str, *, encoders: bool = True) -> None:
        """Delete the collections of ``space`` and (``encoders``) the encoder adapted in it: no
        state or snapshot names it any more."""
        self._made("_stores").pop(space, None)
        self._made("_inboxes").pop(space, None)
        for store in (*STORES, "inbox"):
            with contextlib.suppress(Exception):  # not made, or dropped by another writer
                self.client.delete_collection(self.collection(store, space))
        if space and encoders:
            for key in self.blobs.keys(f"{ENCODERS}/{space}/"):
                self.blobs.delete(key)
                layout.forget(key)

    def forget_stores(self) -> None:
        """Drop the stores made so far (their client is gone: a store set aside)."""
        self.__dict__.pop("_stores", None)
        self.__dict__.pop("_inboxes", None)

    @abc.abstractmethod
    def cache_path(self, model_id: str) -> Path | None:
        """Where this host keeps text -> embedding caches for ``model_id``."""

    def cache_paths(self) -> list[Path]:
        """The embedding caches this workspace keeps of its own (one per model it encoded with)."""
        return []

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

    def vacuum(self, ids: list[str]) -> dict[str, int]:
        """Make Chroma forget deleted records ``ids`` for good (its log and free pages keep
        them); returns what was cleared where. Only an embedded workspace can."""
        raise InvalidInputError(
            "purge: a Chroma server keeps deleted rows in its own storage until its operator vacuums it "
            "(`chroma utils vacuum --path DIR`); remove without purge here, then vacuum on the server"
        )

    def initial_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "schema": SCHEMA_VERSION, "generation": 0, "weights": None}

    def read_tensors(self, state: dict[str, Any]) -> Arrays:
        """The weights the state names, checked against the digest it records."""
        if state["weights"] is None:
            return {}
        try:
            data = self.blobs.get(state["weights"])
        except WorkspaceError as exc:
            raise DamagedError(f"the weights of generation {state['generation']} are missing: {exc}") from exc
        if state.get("weights_sha256") and sha256(data) != state["weights_sha256"]:
            raise DamagedError(f"weights {state['weights']} of {self.location} do not match their checksum")
        try:
            return decode_tensors(data)
        except Exception as exc:  # truncated or tampered
            raise DamagedError(f"cannot read weights {state['weights']} of {self.location}: {exc}") from exc

    def read_statistics(self, state: dict[str, Any]) -> Arrays:
        """The newest generation's statistics (what the next fit needs), checked against their digest."""
        key = state.get("statistics")
        if key is None:  # a repaired workspace: derived again from the examples
            raise WorkspaceError(f"{self.location} has no statistics checkpoint")
        data = self.blobs.get(key)
        if sha256(data) != state.get("statistics_sha256"):
            raise DamagedError(f"statistics {key} of {self.location} do not match their checksum")
        return decode_tensors(data)

    def commit(
        self, state: dict[str, Any], tensors: dict[str, Any], statistics: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Persist a new generation (no weights blob when nothing is learned; ``statistics``
        replace the state's when given); returns the state."""
        generation = int(state["generation"]) + 1
        written: list[str] = []
        new_state = {**state, "generation": generation, "weights": None, "weights_sha256": None}
        for kind, blob in (("weights", tensors), ("statistics", statistics)):
            if blob:
                key = f"{kind}/{generation:08d}-{uuid.uuid4().hex[:8]}.safetensors"
                data = encode_tensors(blob)
                self.blobs.put(key, data)
                written.append(key)
                new_state[kind], new_state[f"{kind}_sha256"] = key, sha256(data)  # snapshots check it
            elif blob is not None:
                new_state[kind] = new_state[f"{kind}_sha256"] = None
        try:
            self._publish(new_state)
        except BaseException:
            for key in written:
                self.blobs.delete(key)
            raise
        return new_state

    def collect_garbage(self, state: dict[str, Any], keep: set[str]) -> list[str]:
        """Delete weights and statistics that neither the state, ``keep`` (snapshots) nor a
        recent generation names; a concurrent writer's uncommitted ones are newer than the
        state, so they stay."""
        floor = int(state["generation"]) - (KEEP_GENERATIONS if self.shared else 0)
        named = {state["weights"], state.get("statistics"), *keep}
        dropped = []
        for key in self.blobs.keys("weights/") + self.blobs.keys("statistics/"):
            if key not in named and weights_generation(key) <= floor:
                self.blobs.delete(key)
                dropped.append(key)
        return dropped
