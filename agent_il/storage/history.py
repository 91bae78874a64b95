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
from agent_il.storage.base import Arrays, Conflict, Workspace, space_age
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


Stores = Callable[[str], dict[str, RecordStore]]  # a space -> its record stores


class History(Snapshots):
    """The snapshots (:class:`Snapshots`: the format) of a workspace whose records are in
    ``stores(space)`` and whose live state is ``current()``. A snapshot's records are in the
    space its state names (a migration to another encoder makes a new one)."""

    def __init__(self, blobs: Blobs, stores: Stores, current: Callable[[], WorkspaceState]) -> None:
        super().__init__(blobs)
        self.stores_of, self._current = stores, current
        self._ids: dict[str, tuple[str, dict[str, frozenset[str]]]] = {}  # per manifest digest: space, ids
        self._union: tuple[tuple[str, ...], dict[str, frozenset[str]]] | None = None  # of these digests
        self.released_spaces: set[str] = set()  # of snapshots that went: unnamed now, maybe

    @property
    def stores(self) -> dict[str, RecordStore]:
        """The record stores of the live state's space."""
        return self.stores_of(self._current().space)

    def records(self, state: WorkspaceState, stores: tuple[str, ...] = ("exemplars", "holdout")) -> dict[str, Records]:
        """The records ``state`` names, per store."""
        return {store: self.stores_of(state.space)[store].load(state.live(store)) for store in stores}

    def named(self) -> dict[str, frozenset[str]]:
        """Every record id some snapshot of the live space names, per store: they stay in its stores."""
        return self._named(self.manifests())

    def _named(self, manifests: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
        space = self._current().space
        digests = (*sorted(self.digest(m) for m in manifests), space)
        if self._union is None or self._union[0] != digests:
            out: dict[str, set[str]] = {store: set() for store in STORES}
            for ids in self._each(manifests, space):
                for store in STORES:
                    out[store].update(ids[store])
            self._union = (digests, {store: frozenset(ids) for store, ids in out.items()})
        return self._union[1]

    def _spaced(self, manifests: list[dict[str, Any]]) -> list[tuple[str, dict[str, frozenset[str]]]]:
        """The space and the ids each manifest names, per store (parsed once per manifest digest)."""
        digests = {self.digest(m): m for m in manifests}
        for key, m in digests.items():
            if key not in self._ids:  # the same bytes name the same records
                state = WorkspaceState.from_json(m["state"], f"snapshot {m['name']!r}")
                self._ids[key] = (state.space, {store: frozenset(state.live(store)) for store in STORES})
        self._ids = {k: v for k, v in self._ids.items() if k in digests}
        return [self._ids[k] for k in digests]

    def _each(self, manifests: list[dict[str, Any]], space: str) -> list[dict[str, frozenset[str]]]:
        """The ids each manifest of ``space`` names, per store."""
        return [ids for s, ids in self._spaced(manifests) if s == space]

    def spaces(self) -> set[str] | None:
        """The spaces the live state and the snapshots name (None while a damaged snapshot may name any)."""
        manifests, damaged = self.readable()
        if damaged:
            return None
        return {self._current().space} | {space for space, _ in self._spaced(manifests)}

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
        each = self._each(manifests, live.space)
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
                self._ids[self.digest(saved)] = (state.space, {s: frozenset(state.live(s)) for s in STORES})
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
        """Delete snapshot ``name``; returns the records it named in the live space (for
        :meth:`release`; another space's go with the space)."""
        state = WorkspaceState.from_json(self._manifest(name)["state"], f"snapshot {name!r}")
        self.delete(name)
        if state.space != self._current().space:
            self.released_spaces.add(state.space)
            return {store: set() for store in STORES}
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
        state = WorkspaceState.from_json(saved, f"snapshot {name!r}")
        if state.space == current.space and state.config.model != current.config.model:
            raise ModelMismatchError(f"snapshot {name!r} was made with model {saved['model']!r}")
        state.config = replace(state.config, auto_snapshots=current.config.auto_snapshots)
        state.generation = current.generation
        state.statistics = current.statistics  # the newest statistics: derived from them again
        state.statistics_sha256 = current.statistics_sha256
        state.statistics_task = current.statistics_task
        missing = {}
        for store, recs in records.items():  # an old-style snapshot's own copies
            present = self.stores_of(state.space)[store].existing(recs.ids)
            missing[store] = recs.take([i for i, rid in enumerate(recs.ids) if rid not in present])
        return Restore(info, state, tensors, missing, save_present=save_present)

    def newest_auto(self) -> SnapshotInfo:
        autos = [s for s in self.list() if s.auto]
        if not autos:
            raise InvalidInputError("nothing to roll back: no automatic snapshot is left")
        return autos[-1]


def drop_unnamed_spaces(ws: Workspace, history: History, min_age: float, released: set[str] | None = None) -> list[str]:
    """Delete the collections of the spaces that neither the live state nor a snapshot names (an
    encoder migrated from, once its snapshots are gone; a migration that died before its
    commit); returns them. ``released``: only these, which a commit or a snapshot named until
    now (so no writer is still filling them); else every space there is, once ``min_age``
    seconds old (another writer's migration may be in progress)."""
    named = history.spaces()
    if named is None:  # a damaged snapshot may name any of them
        return []
    if released is None:
        dropped = [s for s in ws.spaces() - named if space_age(s) >= min_age]
    else:
        dropped = sorted((released | history.released_spaces) - named)
    history.released_spaces.clear()
    for space in dropped:
        ws.drop_space(space)
    return dropped
