"""Keeping a workspace whole: snapshots, restores and rollbacks, and the doctor (which also
examines and repairs a workspace too damaged to open). A part of :class:`IntentLearner`."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any, Literal

from agent_il import strategies, validation
from agent_il.errors import WorkspaceError
from agent_il.memory.store import RecordStore
from agent_il.state import WorkspaceState
from agent_il.storage import open_workspace
from agent_il.storage.base import Workspace
from agent_il.storage.doctor import Diagnosis, diagnose, examine_damaged
from agent_il.storage.history import History, drop_unnamed_spaces
from agent_il.storage.local import WorkspaceBusyError
from agent_il.storage.snapshots import SnapshotInfo
from agent_il.storage.transaction import Transactions
from agent_il.strategies.base import Strategy

# Examples learned since the statistics checkpoint (the ridge Gram matrix, 26 MB at 2,432
# features) before a learn writes a new one: folding that many in when it is read costs about
# 0.2 s, once per process, against a 26 MB write on every small learn.
CHECKPOINT_ROWS = 1024


class Upkeep:
    """Snapshots, restores, rollbacks and the doctor. The learner provides the attributes below."""

    state: WorkspaceState
    stores: dict[str, RecordStore]
    snapshots: History
    workspace: Workspace
    _tx: Transactions
    _commit: Callable[..., SnapshotInfo | None]
    _adopt: Callable[..., None]
    _load: Callable[..., Any]
    _with_statistics: Callable[[], Strategy]
    _checkpoint_lost: bool

    def _statistics_to_write(
        self, state: WorkspaceState, strategy: Strategy, statistics: Literal["keep", "due", "write"]
    ) -> dict[str, Any] | None:
        """What a commit of ``state`` writes of ``strategy``'s statistics (None: the checkpoint
        stays): nothing (``keep``), all (``write``: an edit or a restore, which may drop examples
        the checkpoint holds), or all once ``CHECKPOINT_ROWS`` examples have been learned since
        the checkpoint (``due``: a learn only adds examples, folded in when it is read). Sets
        ``state.statistics_task`` to the newest task the checkpoint then holds."""
        if statistics == "keep" or not strategy.n_classes:
            return None
        newest = state.tasks[-1].id if state.tasks else 0
        since = self.state.statistics_task
        if since is None:  # a checkpoint of its generation
            since = self.state.tasks[-1].id if self.state.tasks else 0
        rows = sum(len(ids) for t, by in (state.examples or {}).items() if int(t) > since for ids in by.values())
        due = self.state.statistics is None or rows >= CHECKPOINT_ROWS or self._checkpoint_lost
        if statistics == "write" or state.examples is None or due:
            state.statistics_task = newest
            return strategy.statistics()
        state.statistics_task = since
        return None

    def _restored_head(self, state: WorkspaceState, tensors: dict[str, Any]) -> Strategy:
        """The head of a snapshot's ``state``: its saved weights, with statistics derived from
        the newest ones and the examples (solved again too where an erasure dropped the weights);
        from its examples alone where they are another encoder's (a rollback of a migration)."""
        from agent_il.engine import edit

        config = state.config
        strategy = strategies.load(config.strategy, config.strategy_config, tensors) if tensors else None
        strategy = strategy or strategies.make(config.strategy, config.strategy_config)
        if not state.labels:
            return strategy
        if strategy.exact_edits and state.examples is not None and self.state.examples is not None:
            if state.space == self.state.space:
                head, base, load = copy.deepcopy(self._with_statistics()), self.state, self._load
            else:
                stores = self.workspace.record_stores(state.space)
                head = strategies.make(config.strategy, config.strategy_config)
                base, load = WorkspaceState.new(config), lambda store, ids: stores[store].load(ids)
            edit.derive(head, base, state, load)
            if not tensors:
                return head
            strategy.load_statistics(head.statistics())
        elif not tensors and state.labels:
            raise WorkspaceError("this snapshot has no weights to restore")
        return strategy

    def snapshot(self, name: str | None = None) -> SnapshotInfo:
        """Save the workspace as it is now under ``name`` (default: a timestamp)."""
        with self._tx.turn():
            return self.snapshots.create(self.state, name)

    def delete_snapshot(self, name: str) -> None:
        with self._tx.turn():
            self.snapshots.drop(name)
            if self.snapshots.released_spaces:  # the last snapshot of an encoder migrated from
                drop_unnamed_spaces(self.workspace, self.snapshots, self._tx.orphan_age, released=set())

    def restore(self, name: str, save_present: bool = True) -> SnapshotInfo:
        """Bring back the head, EWC state, labels, tasks and Chroma records of snapshot ``name``,
        all at once or not at all. The current state is snapshotted first (``auto-``), unless
        ``save_present`` is False (a rollback)."""
        for attempt in self._tx.attempts():
            with attempt:
                plan = self.snapshots.restore(name, self.state, save_present)
                strategy = self._restored_head(plan.state, plan.tensors)
                self._commit(plan.state, strategy, plan.missing, snapshot=plan.save_present, statistics="write")
        return plan.info

    def rollback(self) -> SnapshotInfo:
        """Undo the last learn (or restore): restore the newest automatic snapshot and drop it."""
        info = self.restore(self.snapshots.newest_auto().name, save_present=False)
        self.delete_snapshot(info.name)
        return info

    def doctor(self, orphan_age: float | None = None, repair: bool = False) -> Diagnosis:
        """Check that head, metadata, memory and snapshots agree, and clean what interrupted
        operations left (on a server, only leftovers older than ``orphan_age`` seconds). With
        ``repair``, a damaged statistics checkpoint is derived again from the stored examples.
        :meth:`check` also examines a workspace that does not open."""
        age = self._tx.orphan_age if orphan_age is None else orphan_age
        found = diagnose(self.workspace, self.stores, self.snapshots, self._adopt, orphan_age=age)
        damaged = [p for p in found.problems if p.startswith("statistics")]
        if repair and damaged and self.state.examples is not None:
            for attempt in self._tx.attempts():
                with attempt:
                    self._commit(self.state.copy(), self._with_statistics(), {}, statistics="write")
            found.problems = [p for p in found.problems if p not in damaged]
            found.repaired.append("statistics derived again from the stored examples")
        return found

    @classmethod
    def check(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        chroma_url: str | None = None,
        name: str = "default",
        tenant: str | None = None,
        database: str | None = None,
        wait: float = 0.0,
        repair: bool = False,
    ) -> Diagnosis:
        """:meth:`doctor` for a workspace that may be too damaged to open (its state, its live
        weights or its Chroma store unreadable): everything that can be read is checked and
        everything that cannot is listed; ``repair`` brings back the newest intact snapshot."""
        wait = validation.wait_seconds(wait)  # a bad wait is the caller's error, not damage
        where = {"chroma_url": chroma_url, "name": name, "tenant": tenant, "database": database, "wait": wait}
        unreadable = False
        try:
            learner = cls.open(path, create=False, **where)
        except WorkspaceBusyError:
            raise
        except Exception as exc:  # damaged: examined part by part below
            error: Exception | str = exc
        else:
            with learner:
                found = learner.doctor(repair=repair)
            lost = [p for p in found.problems if p.startswith("chroma")]
            if not (repair and lost and learner.workspace.journal is not None):
                return found
            error, unreadable = "; ".join(lost), True  # records it cannot read: rebuilt from the journal
        ws = open_workspace(path, **where)
        try:
            if not ws.exists() and isinstance(error, Exception):
                raise error
            found = examine_damaged(
                ws,
                str(error),
                ws.record_stores,
                repair,
                unreadable,
            )
        finally:
            ws.close()
        if found.repaired:  # the restored state, checked (and cleaned) the ordinary way
            again = cls.check(path, **where)
            again.repaired, again.problems = found.repaired, again.problems
            return again
        return found
