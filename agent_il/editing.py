"""The knowledge base as data: list, correct, rename, merge, delete and erase what the learner
knows. Mixed into :class:`agent_il.learner.IntentLearner`; every edit is a transaction like a
learn (automatic snapshot, commit or nothing, rollback undoes it) computed by
:mod:`agent_il.engine.edit`, exact for heads with ``exact_edits`` (ridge). The engine (torch) is
imported by the methods that edit or fit, so reading and predicting never load it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from agent_il import erasure, strategies, validation
from agent_il.encoding.cache import EmbeddingCache
from agent_il.encoding.encoder import Encoder
from agent_il.engine.metrics import AccuracyMatrix, correct
from agent_il.errors import InvalidInputError, WorkspaceError
from agent_il.inbox.inbox import Inbox
from agent_il.memory.records import Records
from agent_il.memory.store import RecordStore
from agent_il.results import EditReport, Example, IntentInfo
from agent_il.state import WorkspaceState
from agent_il.storage.base import Workspace
from agent_il.storage.history import History
from agent_il.storage.snapshots import SnapshotInfo
from agent_il.storage.transaction import Transactions
from agent_il.strategies.base import Strategy
from agent_il.strategies.heads import Head

if TYPE_CHECKING:
    from agent_il.engine import edit


class Editing:
    """Reading, checking and editing what the learner knows: the stored examples, the source of
    truth the head is derived from (and deriving it: the statistics a fit needs, the head of a
    state being restored), the intents, their confusions. The learner provides the attributes
    below."""

    state: WorkspaceState
    _head: Head | None
    _strategy: Strategy | None
    _arrays: dict[str, Any]
    snapshots: History
    _inboxes: dict[str, Inbox]
    workspace: Workspace
    encoder: Encoder
    location: str
    _tx: Transactions
    _cache: EmbeddingCache | None
    refresh: Callable[[], bool]
    _commit: Callable[..., SnapshotInfo | None]
    _checkpoint_lost: bool

    @property
    def stores(self) -> dict[str, RecordStore]:
        """The record stores of the live state's space (its encoder's collections)."""
        return self.workspace.record_stores(self.state.space)

    @property
    def inbox(self) -> Inbox:
        """Inputs it could not place, and corrections waiting for review (the live space's)."""
        space = self.state.space
        if space not in self._inboxes:
            self._inboxes[space] = Inbox(self.workspace.inbox_store(space))
        return self._inboxes[space]

    @property
    def head(self) -> Head:
        """What a predict applies: the committed generation's arrays."""
        if self._head is None:
            raise WorkspaceError(f"{self.location} has learned nothing yet; call learn() first")
        return self._head

    @property
    def strategy(self) -> Strategy:
        """The learning rule with the committed head loaded (made on first use: it imports torch)."""
        if self._strategy is None:
            config = self.state.config
            if self._arrays:
                self._strategy = strategies.load(config.strategy, config.strategy_config, self._arrays)
            else:
                self._strategy = strategies.make(config.strategy, config.strategy_config)
        return self._strategy

    def _with_statistics(self) -> Strategy:
        """The head with what a fit or an edit needs loaded: the checkpoint, read once per
        generation, with the learns since folded in (all derived again from the stored examples
        if the blob is lost)."""
        from agent_il.engine import edit

        if not self.strategy.has_statistics:
            try:
                arrays = self.workspace.read_statistics(self.state.to_json())
                self.strategy.load_statistics(strategies.torch_tensors(arrays))
                task = self.state.statistics_task
                if task is not None and self.state.tasks and self.state.tasks[-1].id > task:  # learns since
                    edit.derive(self.strategy, edit.basis(self.state, task), self.state, self._load)
            except WorkspaceError:
                if self.state.examples is None:
                    raise
                self._checkpoint_lost = True
                fresh = strategies.make(self.state.config.strategy, self.state.config.strategy_config)
                edit.derive(fresh, WorkspaceState.new(self.state.config), self.state, self._load)
                self.strategy.load_statistics(fresh.statistics())
        return self.strategy

    def _load(self, store: str, ids: list[str]) -> Records:
        return self.stores[store].load(ids)

    # ----------------------------------------------------------------- reading
    def examples(
        self,
        intent: str | None = None,
        task: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[Example]:
        """The examples the workspace holds (learned, then held out), oldest learn first; filtered
        by ``intent``, by ``task`` (name or id), by a case-insensitive ``search`` in the text."""
        self.refresh()
        if intent is not None:
            _known_intent(self.state, intent, "intent")
        if task is not None and task not in {n for t in self.state.tasks for n in (t.name, str(t.id))}:
            raise InvalidInputError(f"task: no task named {task!r}")
        if limit is not None:
            validation.positive_int(limit, "limit")
        found = [e for e in _all_examples(self) if _matches(e, intent, task, search)]
        return found[:limit] if limit is not None else found

    def find_examples(self, ids: Sequence[str] | None = None, texts: Sequence[str] | None = None) -> list[Example]:
        """The examples ``ids`` name, or whose text is one of ``texts``: what an edit would change."""
        if (ids is None) == (texts is None):
            raise InvalidInputError("give either ids or texts")
        self.refresh()
        live = {"examples": set(self.state.live("examples")), "holdout": set(self.state.live("holdout"))}
        if ids is not None:
            wanted = list(dict.fromkeys(validation.texts(ids, "ids")))
            unknown = [i for i in wanted if not any(i in v for v in live.values())]
            if unknown:
                raise InvalidInputError(f"ids: no example {unknown[0]!r} in this workspace")
            return _examples_of(self, wanted)
        wanted_texts = set(validation.texts(texts, "texts"))
        found = [i for store, v in live.items() for i in self.stores[store].with_texts(wanted_texts) if i in v]
        examples = _examples_of(self, found)
        missing = wanted_texts - {e.text for e in examples}
        if missing:
            raise InvalidInputError(f"texts: no example has the text {sorted(missing)[0]!r}")
        return examples

    def intents(self) -> list[IntentInfo]:
        """Every intent: its examples, exemplars, held-out examples, learns and held-out accuracy."""
        self.refresh()
        every = _all_examples(self)
        held = [e for e in every if e.held_out]
        right: dict[str, list[bool]] = {}
        if held:
            recs = self.stores["holdout"].load([e.id for e in held])
            ok = correct(self.head.raw_scores(recs.x), self.state.labels, recs)
            for e, r in zip(held, ok):
                right.setdefault(e.label, []).append(bool(r))
        out = []
        for label in self.state.labels:
            mine = [e for e in every if e.label == label]
            scores = right.get(label)
            out.append(
                IntentInfo(
                    label=label,
                    examples=sum(not e.held_out for e in mine),
                    exemplars=len(self.state.exemplars.get(label, [])),
                    held_out=sum(e.held_out for e in mine),
                    tasks=list(dict.fromkeys(e.task for e in mine if not e.held_out)),
                    holdout_accuracy=round(100.0 * sum(scores) / len(scores), 2) if scores else None,
                )
            )
        return out

    def accuracy_matrix(self) -> AccuracyMatrix:
        """Held-out accuracy of every task after every learn (tasks learned with ``holdout``)."""
        return AccuracyMatrix.from_state(self.state.evaluation)

    def confusions(self, top: int = 10) -> list[dict[str, Any]]:
        """The most confused pairs of intents, with the rate, the examples and the prototype similarity."""
        from agent_il.ood import diagnostics

        validation.positive_int(top, "top")
        self.refresh()
        recs = self.snapshots.records(self.state)
        return diagnostics.confusions(self.state, self._with_statistics(), recs["exemplars"], recs["holdout"], top)

    # ----------------------------------------------------------------- editing
    def remove_examples(
        self,
        ids: Sequence[str] | None = None,
        texts: Sequence[str] | None = None,
        purge: bool = False,
        drop_snapshots: bool = False,
    ) -> EditReport:
        """Forget examples (learned or held out) as if they had never been learned. With
        ``purge``, their texts and embeddings are erased from every place the workspace holds
        them: stores, inbox, embedding cache, every snapshot (rewritten, or with
        ``drop_snapshots`` deleted), Chroma's log and free pages. Embedded workspaces only."""
        from agent_il.engine import edit

        if purge and self.workspace.shared:
            self.workspace.vacuum([])  # raises: a server cannot be vacuumed from here
        if purge and ids is not None:  # every example with those texts goes, not just these copies
            texts, ids = [e.text for e in self.find_examples(ids=ids) if e.text is not None] or None, None
            if texts is None:
                raise InvalidInputError("ids: these examples have no text to purge (learned as vectors)")
        report = self._edit("remove", lambda: edit.Change("remove", remove=frozenset(_ids(self, ids, texts))))
        if not purge:
            return report
        started = time.perf_counter()
        gone = {e["text"] for e in report.changed["examples"] if e["text"] is not None}
        purged = erasure.purge(self, report.changed["removed"], gone, drop_snapshots)
        snapshot = report.snapshot if report.snapshot in self.snapshots.names() else None  # dropped with the rest
        seconds = round(report.seconds + time.perf_counter() - started, 4)
        return replace(report, purged=purged, snapshot=snapshot, seconds=seconds)

    def relabel(self, ids: Sequence[str] | None = None, texts: Sequence[str] | None = None, *, to: str) -> EditReport:
        """Give examples the label ``to`` (a known intent, or a new one: a split)."""
        from agent_il.engine import edit

        label = validation.labels([to], 1)[0]
        return self._edit(
            "relabel", lambda: edit.Change("relabel", relabel=dict.fromkeys(_ids(self, ids, texts), label))
        )

    def rename_intent(self, old: str, new: str) -> EditReport:
        """Rename intent ``old`` to ``new`` (a name not in use: onto a known one is a merge)."""
        from agent_il.engine import edit

        new = validation.labels([new], 1)[0]

        def change() -> edit.Change:
            _known_intent(self.state, old, "old")
            if new in self.state.labels:
                raise InvalidInputError(f"new: intent {new!r} exists; merging {old!r} into it is `merge_intents`")
            return edit.Change("rename", relabel=dict.fromkeys(_of_intents(self, [old]), new), rename={old: new})

        return self._edit("rename", change)

    def merge_intents(self, labels: Sequence[str], into: str) -> EditReport:
        """Make intents ``labels`` one intent ``into`` (one of them, or a new name)."""
        from agent_il.engine import edit

        into = validation.labels([into], 1)[0]
        listed = validation.texts(labels, "labels")
        names = list(dict.fromkeys(validation.labels(listed, len(listed))))

        def change() -> edit.Change:
            if len(names) < 2:
                raise InvalidInputError("labels: give at least two intents to merge")
            for label in names:
                _known_intent(self.state, label, "labels")
            if into in self.state.labels and into not in names:
                raise InvalidInputError(f"into: {into!r} is another intent; list it among the intents to merge")
            moving = [y for y in names if y != into]
            rename = {names[0]: into} if into not in names else {}
            return edit.Change("merge", relabel=dict.fromkeys(_of_intents(self, moving), into), rename=rename)

        return self._edit("merge", change)

    def delete_intent(self, label: str) -> EditReport:
        """Retire intent ``label``: its examples, exemplars, held-out rows and column go."""
        from agent_il.engine import edit

        def change() -> edit.Change:
            _known_intent(self.state, label, "label")
            return edit.Change("delete", remove=frozenset(_of_intents(self, [label])))

        return self._edit("delete", change)

    def _edit(self, action: str, change: Callable[[], edit.Change]) -> EditReport:
        from agent_il.engine import edit

        self.refresh()
        if self.state.examples is None:
            raise InvalidInputError(
                f"{self.location} was made before agent-il kept every example, so its head cannot be edited "
                "exactly; relearn its data into a new workspace"
            )
        start = time.perf_counter()
        for attempt in self._tx.attempts():
            with attempt:
                old = self.state
                spec = change()
                before = {e.id: e for e in _examples_of(self, sorted(spec.remove | set(spec.relabel)))}
                done = edit.apply(old, self._with_statistics(), spec, self._load)
                snap = self._commit(done.state, done.strategy, done.added, snapshot=True, statistics="write")
        names = {t.id: t.name for t in self.state.tasks}
        removed = [before[i].to_dict() for i in sorted(spec.remove)]
        return EditReport(
            action=action,
            changed={
                "removed": sorted(spec.remove),
                "examples": removed,
                "relabelled": {
                    i: {"id": done.copies[i], "from": before[i].label, "to": y} for i, y in spec.relabel.items()
                },
                "intents": _intent_changes(old, self.state),
            },
            examples_removed=sum(not e["held_out"] for e in removed),
            examples_relabelled=sum(not before[i].held_out for i in spec.relabel),
            classes_total=len(self.state.labels),
            examples_total=len(self.state.live("examples")),
            exact=self.strategy.exact_edits,
            seconds=round(time.perf_counter() - start, 4),
            holdout_accuracy=[{"task": t, "name": names.get(t, str(t)), **a} for t, a in done.accuracy.items()],
            calibration=done.checks["calibration"],
            snapshot=snap.name if snap else None,
        )


def _known_intent(state: WorkspaceState, label: Any, what: str) -> str:
    if not isinstance(label, str) or label not in state.labels:
        raise InvalidInputError(f"{what}: no intent named {label!r}")
    return label


def _matches(e: Example, intent: str | None, task: str | None, search: str | None) -> bool:
    return (
        (intent is None or e.label == intent)
        and (task is None or task in (e.task, str(e.task_id)))
        and (search is None or (e.text is not None and search.casefold() in e.text.casefold()))
    )


def _all_examples(learner: Editing) -> list[Example]:
    return _examples_of(learner, learner.state.live("examples") + learner.state.live("holdout"))


def _examples_of(learner: Editing, ids: list[str]) -> list[Example]:
    """The examples ``ids`` (learned or held out, all live), oldest learn first."""
    held = set(learner.state.live("holdout"))
    out = []
    for store, is_held in (("examples", False), ("holdout", True)):
        recs = learner.stores[store].load([i for i in ids if (i in held) == is_held])
        for i, text, m in zip(recs.ids, recs.texts, recs.metadatas):
            out.append(
                Example(
                    id=i,
                    text=text,
                    label=str(m["label"]),
                    task=str(m["task"]),
                    task_id=int(m["task_id"]),
                    time=float(m["time"]),
                    source=str(m.get("source", "texts")),
                    weight=0.0 if is_held else float(m.get("weight", 0.0)),
                    held_out=is_held,
                )
            )
    return sorted(out, key=lambda e: (e.task_id, e.held_out))


def _ids(learner: Editing, ids: Sequence[str] | None, texts: Sequence[str] | None) -> list[str]:
    return [e.id for e in learner.find_examples(ids=ids, texts=texts)]


def _of_intents(learner: Editing, labels: list[str]) -> list[str]:
    """Every example and held-out id of intents ``labels``."""
    state = learner.state
    learned = [i for by in (state.examples or {}).values() for y, ids in by.items() if y in labels for i in ids]
    held = learner.stores["holdout"].load(state.live("holdout"))
    return learned + [i for i, y in zip(held.ids, held.labels) if y in labels]


def _intent_changes(old: WorkspaceState, new: WorkspaceState) -> dict[str, list[str]]:
    return {
        "added": [y for y in new.labels if y not in old.labels],
        "gone": [y for y in old.labels if y not in new.labels],
    }
