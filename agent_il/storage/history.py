"""A workspace's history: named and automatic snapshots of its committed states, which records
they keep alive, and what a restore or a rollback needs to bring one back (the commit itself is
the learner's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from agent_il.errors import InvalidInputError, ModelMismatchError, WorkspaceError
from agent_il.memory.records import Records
from agent_il.memory.store import RecordStore
from agent_il.state import STORES, WorkspaceState, now
from agent_il.storage.base import Arrays, Conflict
from agent_il.storage.blobs import Blobs
from agent_il.storage.snapshots import AUTO_PREFIX, SnapshotInfo, Snapshots, check_name


@dataclass
class Restore:
    """A snapshot to bring back: its state (on top of the current generation), weights ({} when
    an erasure rewrote it: the head is derived again), the records an old-style snapshot holds
    that the stores no longer do, and whether the present is to be snapshotted first."""

    info: SnapshotInfo
    state: WorkspaceState
    tensors: Arrays
    missing: dict[str, Records]
    save_present: bool


class History(Snapshots):
    """The snapshots (:class:`Snapshots`: the format) of a workspace whose records are in
    ``stores`` and whose live state is ``current()``."""

    def __init__(self, blobs: Blobs, stores: dict[str, RecordStore], current: Callable[[], WorkspaceState]) -> None:
        super().__init__(blobs)
        self.stores, self._current = stores, current
        self._ids: dict[str, dict[str, frozenset[str]]] = {}  # per manifest digest
        self._union: tuple[tuple[str, ...], dict[str, frozenset[str]]] | None = None  # of these digests

    def records(self, state: WorkspaceState, stores: tuple[str, ...] = ("exemplars", "holdout")) -> dict[str, Records]:
        """The records ``state`` names, per store."""
        return {store: self.stores[store].load(state.live(store)) for store in stores}

    def named(self) -> dict[str, frozenset[str]]:
        """Every record id some snapshot names, per store: they stay in the stores."""
        return self._named(self.manifests())

    def _named(self, manifests: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
        digests = tuple(sorted(self.digest(m) for m in manifests))
        if self._union is None or self._union[0] != digests:
            out: dict[str, set[str]] = {store: set() for store in STORES}
            for ids in self._each(manifests):
                for store in STORES:
                    out[store].update(ids[store])
            self._union = (digests, {store: frozenset(ids) for store, ids in out.items()})
        return self._union[1]

    def _each(self, manifests: list[dict[str, Any]]) -> list[dict[str, frozenset[str]]]:
        """The ids each manifest names, per store (parsed once per manifest digest)."""
        digests = {self.digest(m): m for m in manifests}
        for key, m in digests.items():
            if key not in self._ids:  # the same bytes name the same records
                state = WorkspaceState.from_json(m["state"], f"snapshot {m['name']!r}")
                self._ids[key] = {store: frozenset(state.live(store)) for store in STORES}
        self._ids = {k: v for k, v in self._ids.items() if k in digests}
        return [self._ids[k] for k in digests]

    def kept(self) -> dict[str, set[str]]:
        """What the stores must keep: the live state's records and every snapshot's (all of
        them while a damaged snapshot may name any)."""
        manifests, damaged = self.readable()
        if damaged:
            return {store: self.stores[store].all_ids() for store in STORES}
        named, live = self._named(manifests), self._current()
        return {store: named[store] | set(live.live(store)) for store in STORES}

    def release(self, candidates: dict[str, set[str]]) -> None:
        """Delete the ``candidates`` that neither the live state nor a snapshot names any more.
        Most commits release nothing (a dropped snapshot names what the live state does), so
        the candidates are checked one by one rather than against the union of every snapshot."""
        live = self._current()
        left = {store: ids.difference(live.live(store)) for store, ids in candidates.items()}
        if not any(left.values()):
            return
        manifests, damaged = self.readable()
        if damaged:
            return  # a damaged snapshot may name any of them: kept until doctor sorts it out
        each = self._each(manifests)
        for store, ids in left.items():
            self.stores[store].delete({i for i in ids if not any(i in named[store] for named in each)})

    def create(self, state: WorkspaceState, name: str | None = None) -> SnapshotInfo:
        """Save ``state`` under ``name`` (default: a timestamp). Call in the write turn."""
        name = check_name(datetime.now(timezone.utc).strftime("snap-%Y%m%d-%H%M%S") if name is None else name)
        if name.startswith(AUTO_PREFIX):
            raise InvalidInputError(f"names starting with {AUTO_PREFIX!r} are kept for automatic snapshots")
        info = self.save(name, now(), state.to_json())
        if info is None:
            raise InvalidInputError(f"snapshot {name!r} already exists")
        return info

    def auto(self, state: WorkspaceState) -> tuple[SnapshotInfo, bool]:
        """The automatic snapshot of ``state`` (made now unless a writer that raced us from the
        same state saved it already), and whether this call made it."""
        name = f"{AUTO_PREFIX}{state.generation:06d}"
        for _ in range(3):  # the racer's copy may be trimmed or dropped while we look it up
            created = self.save(name, now(), state.to_json())
            if created is not None:
                saved = self._manifest(name, listed=True)  # as just written: held in process, not read
                self._ids[self.digest(saved)] = {s: frozenset(state.live(s)) for s in STORES}
                return created, True
            found = next((s for s in self.list() if s.name == name), None)
            if found is not None:
                return found, False
        raise Conflict(f"automatic snapshot {name!r} kept changing under this writer")

    def drop(self, name: str) -> None:
        """Delete snapshot ``name`` and the records only it still named (a damaged one goes
        without that: what it named is left to the next pruning, which no longer sees it)."""
        if check_name(name) in self.names():
            try:
                self._manifest(name, listed=True)
            except WorkspaceError:
                self.delete(name)
                return
        self.release(self._forget(name))

    def _forget(self, name: str) -> dict[str, set[str]]:
        """Delete snapshot ``name``; returns the records it named (for :meth:`release`)."""
        state = WorkspaceState.from_json(self._manifest(name)["state"], f"snapshot {name!r}")
        self.delete(name)
        return {store: set(state.live(store)) for store in STORES}

    def trim(self, keep: int) -> dict[str, set[str]]:
        """Delete all but the newest ``keep`` automatic snapshots; returns the records they
        named, for the caller's one :meth:`release` after its commit."""
        autos = self.auto_names()
        named: dict[str, set[str]] = {store: set() for store in STORES}
        for name in autos[: max(0, len(autos) - keep)]:
            try:
                for store, ids in self._forget(name).items():
                    named[store] |= ids
            except InvalidInputError:  # another writer trimmed it first
                pass
            except WorkspaceError:  # damaged: kept for doctor to report, never a failed commit
                pass
        return named

    def restore(self, name: str, current: WorkspaceState, save_present: bool = True) -> Restore:
        """What bringing back snapshot ``name`` on top of ``current`` takes (``save_present``:
        snapshot the present first; a rollback does not, it drops the snapshot it restores)."""
        if check_name(name) not in self.names():
            raise InvalidInputError(f"no snapshot named {name!r}")
        saved, tensors, records = self.load(name)  # a damaged one is refused here
        info = self._info(self._manifest(name))
        if saved["model"] != current.config.model:
            raise ModelMismatchError(f"snapshot {name!r} was made with model {saved['model']!r}")
        state = WorkspaceState.from_json(saved, f"snapshot {name!r}")
        state.config = replace(state.config, auto_snapshots=current.config.auto_snapshots)
        state.generation = current.generation
        state.statistics = current.statistics  # the newest statistics: derived from them again
        state.statistics_sha256 = current.statistics_sha256
        state.statistics_task = current.statistics_task
        missing = {}
        for store, recs in records.items():  # an old-style snapshot's own copies
            present = self.stores[store].existing(recs.ids)
            missing[store] = recs.take([i for i, rid in enumerate(recs.ids) if rid not in present])
        return Restore(info, state, tensors, missing, save_present=save_present)

    def newest_auto(self) -> SnapshotInfo:
        autos = [s for s in self.list() if s.auto]
        if not autos:
            raise InvalidInputError("nothing to roll back: no automatic snapshot is left")
        return autos[-1]
