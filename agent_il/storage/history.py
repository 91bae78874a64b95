"""A workspace's history: named and automatic snapshots of its committed states, and what a
restore or a rollback needs to bring one back (the commit itself is the learner's)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from torch import Tensor

from agent_il.errors import InvalidInputError, ModelMismatchError
from agent_il.memory.records import Records
from agent_il.memory.store import RecordStore
from agent_il.state import STORES, WorkspaceState, now
from agent_il.storage.base import Conflict
from agent_il.storage.blobs import Blobs
from agent_il.storage.snapshots import AUTO_PREFIX, SnapshotInfo, Snapshots, check_name


@dataclass
class Restore:
    """A snapshot to bring back: its state (on top of the current generation), weights, the
    records it names that the stores no longer hold, and the current records when the present
    is to be snapshotted first."""

    info: SnapshotInfo
    state: WorkspaceState
    tensors: dict[str, Tensor]
    missing: dict[str, Records]
    previous: dict[str, Records] | None


class History(Snapshots):
    """The snapshots (:class:`Snapshots`: the format) of a workspace whose records are in ``stores``."""

    def __init__(self, blobs: Blobs, stores: dict[str, RecordStore]) -> None:
        super().__init__(blobs)
        self.stores = stores

    def records(self, state: WorkspaceState) -> dict[str, Records]:
        """The records ``state`` names, per store."""
        return {store: self.stores[store].load(state.live(store)) for store in STORES}

    def create(self, state: WorkspaceState, name: str | None = None) -> SnapshotInfo:
        """Save ``state`` under ``name`` (default: a timestamp). Call in the write turn."""
        name = check_name(datetime.now(timezone.utc).strftime("snap-%Y%m%d-%H%M%S") if name is None else name)
        if name.startswith(AUTO_PREFIX):
            raise InvalidInputError(f"names starting with {AUTO_PREFIX!r} are kept for automatic snapshots")
        info = self.save(name, now(), state.to_json(), self.records(state))
        if info is None:
            raise InvalidInputError(f"snapshot {name!r} already exists")
        return info

    def auto(self, state: WorkspaceState, records: dict[str, Records]) -> tuple[SnapshotInfo, bool]:
        """The automatic snapshot of ``state`` (made now unless a writer that raced us from the
        same state saved it already), and whether this call made it."""
        name = f"{AUTO_PREFIX}{state.generation:06d}"
        for _ in range(3):  # the racer's copy may be trimmed or dropped while we look it up
            created = self.save(name, now(), state.to_json(), records)
            if created is not None:
                return created, True
            found = next((s for s in self.list() if s.name == name), None)
            if found is not None:
                return found, False
        raise Conflict(f"automatic snapshot {name!r} kept changing under this writer")

    def trim(self, keep: int) -> None:
        """Keep the newest ``keep`` automatic snapshots."""
        autos = self.auto_names()
        for name in autos[: max(0, len(autos) - keep)]:
            try:
                self.delete(name)
            except InvalidInputError:  # another writer trimmed it first
                pass

    def restore(self, name: str, current: WorkspaceState) -> Restore:
        """What bringing back snapshot ``name`` on top of ``current`` takes."""
        info = next((s for s in self.list() if s.name == check_name(name)), None)
        if info is None:
            raise InvalidInputError(f"no snapshot named {name!r}")
        saved, tensors, records = self.load(name)
        if saved["model"] != current.config.model:
            raise ModelMismatchError(f"snapshot {name!r} was made with model {saved['model']!r}")
        state = WorkspaceState.from_json(saved, f"snapshot {name!r}")
        state.config = replace(state.config, auto_snapshots=current.config.auto_snapshots)
        state.generation = current.generation
        present = {store: self.stores[store].all_ids() for store in STORES}
        missing = {s: r.take([i for i, rid in enumerate(r.ids) if rid not in present[s]]) for s, r in records.items()}
        # Restoring a named snapshot saves the present first; a rollback (auto) does not.
        previous = None if info.auto else self.records(current)
        return Restore(info, state, tensors, missing, previous)

    def newest_auto(self) -> SnapshotInfo:
        autos = [s for s in self.list() if s.auto]
        if not autos:
            raise InvalidInputError("nothing to roll back: no automatic snapshot is left")
        return autos[-1]
