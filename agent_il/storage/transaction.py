"""Every change to a workspace (learn, edit, restore, calibrate) is one transaction.

Everything is computed on copies; then new records are added to Chroma, the workspace commits
(an atomic rename on disk, a compare-and-set on a Chroma server), and only then are dropped
records deleted. An error before the commit leaves the workspace and the process's state exactly
as they were; records left by a killed process are pruned on a later write. On a server, a
writer that loses the race to another one recomputes its change on top of the winner's state
(:class:`Conflict`), so no change is lost.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from agent_il.memory.records import Records
from agent_il.state import STORES, WorkspaceState
from agent_il.storage.base import Conflict, Workspace
from agent_il.storage.history import History, drop_unnamed_spaces
from agent_il.storage.snapshots import SnapshotInfo

_log = logging.getLogger(__name__)

ORPHAN_AGE = 900.0  # seconds before a shared server's unnamed records count as a dead writer's
RETRIES = 20  # commits lost to other writers before a change gives up


class Transactions:
    """The writes of one process to one workspace. ``current`` gives the state this process
    holds; ``catch_up`` is told of a newer committed state found at the start of a write turn."""

    def __init__(
        self,
        workspace: Workspace,
        history: History,
        current: Callable[[], WorkspaceState],
        catch_up: Callable[[WorkspaceState], None],
    ) -> None:
        self.workspace, self.history = workspace, history
        self._current, self._catch_up = current, catch_up
        self._pruned = False  # orphan records cleared since this process opened the workspace

    @property
    def orphan_age(self) -> float:
        """How old a leftover must be before it is removed: on a shared server, younger ones may be
        another writer's work in progress."""
        return ORPHAN_AGE if self.workspace.shared else 0.0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Take this process's turn to write, catch up with other writers, clear crash leftovers
        (unfinished snapshot files go after the next commit, :meth:`Snapshots.tidy`)."""
        with self.workspace.writing():
            latest = self.workspace.read_state()
            if latest["generation"] != self._current().generation:
                self._catch_up(WorkspaceState.from_json(latest, self.workspace.location))
            age = self.orphan_age
            self.workspace.clean_temporary(older_than=age)
            if self.workspace.shared or not self._pruned:  # embedded: only a dead process leaves orphans
                kept, stores = self.history.kept(), self.history.stores
                for store in STORES:
                    stores[store].prune(kept[store], min_age=age)
                self._pruned = True
            yield

    def attempts(self) -> Iterator[contextlib.AbstractContextManager[None]]:
        """``for attempt in tx.attempts(): with attempt: ...`` runs the block as one write, and
        again on top of the newer state while another writer commits first."""
        for n in range(RETRIES):
            done: list[bool] = []
            yield self._attempt(done, last=n == RETRIES - 1)
            if done:
                return
            time.sleep(random.uniform(0.02, 0.2) * (1 + n))

    @contextmanager
    def _attempt(self, done: list[bool], last: bool) -> Iterator[None]:
        with self.turn():
            try:
                yield
            except Conflict:
                if last:
                    raise
                return
        done.append(True)

    def commit(
        self,
        state: WorkspaceState,
        tensors: dict[str, Any],
        added: dict[str, Records],
        on_commit: Callable[[WorkspaceState], None],
        snapshot: bool = False,
        statistics: dict[str, Any] | None = None,
    ) -> SnapshotInfo | None:
        """Add records, commit ``state`` (with new ``statistics`` if given), tell ``on_commit``,
        drop the records nothing names any more. Call in the write turn. With ``snapshot``, the
        current state is first saved as an automatic snapshot, which is returned."""
        old = self._current()
        snap, created = None, False
        if snapshot and old.config.auto_snapshots > 0:
            snap, created = self.history.auto(old)
        journal = self.workspace.journal
        entry = None
        stores = self.history.stores_of(state.space)
        try:
            for store, recs in added.items():
                stores[store].add(recs, generation=old.generation + 1)
            entry = journal.write(old.generation + 1, added, state.space) if journal is not None else None
            published = self.workspace.commit(state.to_json(), tensors, statistics)
            committed = WorkspaceState.from_json(published)
        except BaseException as error:
            for store, recs in added.items():  # this process cleans up after itself
                stores[store].delete(recs.ids)
            if entry is not None and journal is not None:
                journal.delete(entry)
            # A writer that lost the race keeps the snapshot: the winner came from the same state.
            if created and snap is not None and not isinstance(error, Conflict):
                self.history.delete(snap.name)
            raise
        on_commit(committed)
        try:
            released = self.history.trim(committed.config.auto_snapshots)
            if old.space == committed.space:  # else the old space's records go with the space
                for store in STORES:
                    released[store] |= set(old.live(store)) - set(committed.live(store))
            self.history.release(released)
            if old.space != committed.space or self.history.released_spaces:
                drop_unnamed_spaces(self.workspace, self.history, self.orphan_age, released={old.space})
            _, in_use = self.history.tidy(min_age=self.orphan_age)
            self.workspace.collect_garbage(published, keep=in_use)
        except Exception as exc:  # the commit stands: a command that committed does not fail
            _log.warning("committed; the cleanup after it is left to the next write or doctor: %s", exc)
        return snap
