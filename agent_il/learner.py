"""The facade: ``IntentLearner.open(path)`` then ``learn`` / ``predict``.

Every change (learn, restore) is a transaction. Everything is computed on copies; then new
records are added to Chroma, the workspace commits (an atomic rename on disk, a compare-and-set
on a Chroma server), and only then are dropped records deleted. An error before the commit leaves
the workspace and the learner in this process exactly as they were; records left by a killed
process are pruned on a later write. On a server, a writer that loses the race to another one
recomputes its change on top of the winner's state (``Conflict``), so no learn is lost.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent_il import knowledge, ood, strategies, validation
from agent_il.budget import MemoryBudget
from agent_il.doctor import Diagnosis
from agent_il.embedding_cache import EmbeddingCache
from agent_il.encoder import Encoder, normalise_model_id
from agent_il.errors import InvalidInputError, ModelMismatchError, WorkspaceError
from agent_il.memory import Records, RecordStore
from agent_il.metrics import AccuracyMatrix, FileEvaluation
from agent_il.results import UNKNOWN, LearnReport, Prediction, Task
from agent_il.snapshots import AUTO_PREFIX, SnapshotInfo, Snapshots, check_name
from agent_il.strategies.base import Strategy
from agent_il.workspace import Conflict, LocalWorkspace, Workspace

STORES = ("exemplars", "holdout")
ORPHAN_AGE = 900.0  # seconds before a shared server's unnamed records count as a dead writer's
RETRIES = 20  # commits lost to other writers before a change gives up


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _live(state: dict[str, Any], store: str) -> list[str]:
    return [i for ids in state[store].values() for i in ids]


class IntentLearner:
    """Class-incremental intent classifier over frozen sentence embeddings, persisted in a
    workspace directory. Labels may be new or known in any ``learn``; no task id is needed to
    predict."""

    def __init__(self, workspace: Workspace, state: dict[str, Any], encoder: Encoder) -> None:
        self.workspace = workspace
        self.encoder = encoder
        self.stores = {name: RecordStore(workspace.client, workspace.collection(name)) for name in STORES}
        # Inputs rejected as unknown (agent_il.knowledge): not part of a commit, never snapshotted.
        self.stores["inbox"] = RecordStore(workspace.client, workspace.collection("inbox"))
        self.inbox_limit = knowledge.INBOX_LIMIT
        self.snapshots = Snapshots(workspace.blobs)
        self._cache: EmbeddingCache | None = None
        self._pruned = False  # orphan records cleared since this learner opened the workspace
        self._adopt(state)

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        chroma_url: str | None = None,
        name: str = "default",
        tenant: str | None = None,
        database: str | None = None,
        wait: float = 0.0,
        model: str | os.PathLike[str] | None = None,
        strategy: str | None = None,
        strategy_config: dict[str, Any] | None = None,
        memory_per_class: int | None = None,
        memory_total: int | None = None,
        selection: str | None = None,
        auto_snapshots: int | None = None,
        encoder: Encoder | None = None,
        device: str | None = None,
        create: bool = True,
    ) -> IntentLearner:
        """Open the workspace at ``path``, creating it (with these settings) if it does not exist.
        Settings given for an existing workspace must match what it was created with.
        ``auto_snapshots`` is how many automatic pre-learn snapshots to keep (0: none).

        With ``chroma_url`` the workspace ``name`` lives on that Chroma server (in ``tenant`` /
        ``database``) and is shared with every process that opens it there; without it, ``path``
        is a directory with an embedded Chroma that one process at a time may open (another one
        waits ``wait`` seconds, then gets :class:`agent_il.workspace.WorkspaceBusyError`)."""
        wanted_model = encoder.model_id if encoder is not None else (normalise_model_id(model) if model else None)
        asked = {
            "model": wanted_model,
            "strategy": strategy,
            "strategy_config": strategy_config,
            "memory_per_class": memory_per_class,
            "memory_total": memory_total,
            "selection": selection,
            "auto_snapshots": auto_snapshots,
        }
        if chroma_url is not None:
            from agent_il.server import DEFAULT_DATABASE, DEFAULT_TENANT, ServerWorkspace

            ws: Workspace = ServerWorkspace(chroma_url, name, tenant or DEFAULT_TENANT, database or DEFAULT_DATABASE)
        elif path is None:
            raise InvalidInputError("give a workspace directory, or a Chroma server URL")
        else:
            ws = LocalWorkspace(path, wait=wait)
        try:
            if ws.exists():
                state = ws.read_state()
            elif not create:
                raise WorkspaceError(f"no agent-il workspace at {ws.location}")
            else:
                ws.create(_new_state(**asked))
                state = ws.read_state()  # on a server, another process may have created it first
            _check_same(state, asked)
            return cls(ws, state, encoder or Encoder(state["model"], device=device))
        except BaseException:
            ws.close()
            raise

    def _adopt(self, state: dict[str, Any], strategy: Strategy | None = None) -> None:
        if strategy is None:
            strategy = strategies.make(state["strategy"]["name"], state["strategy"]["config"])
            if state["weights"] is not None:
                strategy.load_tensors(self.workspace.read_tensors(state))
        if strategy.n_classes != len(state["labels"]):
            raise WorkspaceError(
                f"{self.location}: head has {strategy.n_classes} classes, labels list {len(state['labels'])}"
            )
        self.state, self.strategy = state, strategy
        self.budget = MemoryBudget(**state["memory"])

    def close(self) -> None:
        """Release the workspace (an embedded one can then be opened by another process)."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        self.workspace.close()

    def __enter__(self) -> IntentLearner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reading
    @property
    def path(self) -> Path | None:
        """The workspace directory (None for a workspace on a Chroma server)."""
        return getattr(self.workspace, "root", None)

    @property
    def location(self) -> str:
        """The workspace directory, or ``URL/tenant/database/name`` on a Chroma server."""
        return self.workspace.location

    def refresh(self) -> bool:
        """Adopt the newest committed state if another process committed one; returns whether it did."""
        if not self.workspace.shared:
            return False  # an embedded workspace has one process: this one
        if self.workspace.latest_generation() == self.state["generation"]:
            return False  # the common case costs one small request
        for _ in range(3):  # the state read may be collected under us by a fast writer
            state = self.workspace.read_state()
            try:
                self._adopt(state)
                return True
            except WorkspaceError:
                continue
        raise WorkspaceError(f"{self.location}: the state changed too fast to read")

    @property
    def labels(self) -> list[str]:
        return list(self.state["labels"])

    @property
    def tasks(self) -> list[Task]:
        return [Task.from_dict(t) for t in self.state["tasks"]]

    @property
    def strategy_name(self) -> str:
        return str(self.state["strategy"]["name"])

    @property
    def memory(self) -> RecordStore:
        return self.stores["exemplars"]

    def exemplar_counts(self) -> dict[str, int]:
        return {label: len(ids) for label, ids in self.state["exemplars"].items()}

    def accuracy_matrix(self) -> AccuracyMatrix:
        """Held-out accuracy of every task after every learn (tasks learned with ``holdout``)."""
        return AccuracyMatrix.from_state(self.state["evaluation"])

    def status(self) -> dict[str, Any]:
        self.refresh()
        return {
            "path": self.location,
            "model": self.state["model"],
            "dim": self.state["dim"],
            "strategy": self.strategy_name,
            "memory": self.state["memory"],
            "classes": len(self.state["labels"]),
            "tasks": len(self.state["tasks"]),
            "exemplars": sum(self.exemplar_counts().values()),
            "holdout_examples": len(_live(self.state, "holdout")),
            "snapshots": len(self.snapshots.list()),
            "generation": self.state["generation"],
            "updated": self.state["updated"],
            "size_bytes": self.workspace.size_bytes(),
        }

    # ----------------------------------------------------------------- learning
    def learn(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        task: str | None = None,
        holdout: float = 0.0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> LearnReport:
        """Learn labelled texts as one task. New labels grow the head; known labels get more data.
        ``holdout`` keeps that fraction of each class aside as the task's test slice;
        ``on_progress(done, total)`` follows the encoding, the slow part."""
        texts = validation.texts(texts)
        label_list = validation.labels(labels, len(texts))
        task = validation.task_name(task)
        holdout = validation.fraction(holdout, "holdout")
        start = time.perf_counter()
        x = self._encode(texts, on_progress)
        return self._learn(x, label_list, texts, task, holdout, start)

    def learn_vectors(
        self,
        vectors: Any,
        labels: Sequence[str],
        task: str | None = None,
        texts: Sequence[str] | None = None,
        holdout: float = 0.0,
    ) -> LearnReport:
        """The same engine on any feature vectors (n x d); ``texts`` are kept as evidence if given."""
        start = time.perf_counter()
        x = validation.vectors(vectors, self.state["dim"])
        label_list = validation.labels(labels, len(x))
        if texts is not None:
            texts = validation.texts(texts)
            if len(texts) != len(x):
                raise InvalidInputError(f"got {len(x)} vectors but {len(texts)} texts")
        task = validation.task_name(task)
        return self._learn(x, label_list, texts, task, validation.fraction(holdout, "holdout"), start)

    def _learn(
        self,
        x: np.ndarray,
        labels: list[str],
        texts: list[str] | None,
        task: str | None,
        holdout: float,
        start: float,
    ) -> LearnReport:
        encoded = time.perf_counter()
        for attempt in self._attempts():
            with attempt:
                old = self.state
                state = json.loads(json.dumps(old))  # a deep copy; the state is JSON, and this is 4x faster
                state["dim"] = state["dim"] or int(x.shape[1])
                task_id = len(state["tasks"]) + 1
                name = task or f"task-{task_id}"
                stamp = time.time()
                batch = Records(
                    [uuid.uuid4().hex for _ in labels],
                    x,
                    list(texts) if texts is not None else [None] * len(labels),
                    [{"label": y, "task": name, "task_id": task_id, "time": stamp} for y in labels],
                )
                train, test = _split_holdout(batch, holdout, seed=task_id)
                seen = list(dict.fromkeys(labels))
                new_classes = [y for y in seen if y not in old["labels"]]
                state["labels"] += new_classes
                index = {y: i for i, y in enumerate(state["labels"])}

                memory = self.memory.load(_live(old, "exemplars"))
                held = self.stores["holdout"].load(_live(old, "holdout"))
                replay = None
                if memory.ids:
                    replay = (torch.from_numpy(memory.x), torch.tensor([index[y] for y in memory.labels]))
                strategy = copy.deepcopy(self.strategy)
                y_train = torch.tensor([index[y] for y in train.labels])
                strategy.fit(torch.from_numpy(train.x), y_train, len(state["labels"]), replay)
                fitted = time.perf_counter()

                state["exemplars"], added = self._plan_exemplars(old, memory, train, len(state["labels"]), task_id)
                if test.ids:
                    state["holdout"][str(task_id)] = test.ids
                both = Records.concat([held, test])  # every held-out slice, in state["holdout"] order
                held_logits = ood.head_logits(strategy, torch.from_numpy(both.x)) if both.ids else None
                accuracy = self._holdout_accuracy(old, state, both, held_logits)
                if test.ids or accuracy:
                    state["evaluation"].append(
                        {"after_task": task_id, "accuracy": {str(t): a["after"] for t, a in accuracy.items()}}
                    )
                counts = dict(Counter(labels))
                seconds = round(time.perf_counter() - start, 4)
                record = Task(task_id, name, seen, new_classes, counts, len(labels), _now(), seconds)
                state["tasks"].append(record.__dict__)
                state["updated"] = record.time
                checks = knowledge.at_learn(
                    self, old, state, strategy, train, memory, added, [held, test], task_id, held_logits
                )
                planned = time.perf_counter()
                added_records = {"exemplars": added, "holdout": test}
                snap = self._commit(state, strategy, added_records, previous={"exemplars": memory, "holdout": held})
        done = time.perf_counter()
        names = {t["id"]: t["name"] for t in state["tasks"]}
        return LearnReport(
            task=record,
            new_classes=new_classes,
            updated_classes=[y for y in seen if y in old["labels"]],
            examples=len(train.ids),
            classes_total=len(state["labels"]),
            exemplars_total=len(_live(state, "exemplars")),
            seconds=round(done - start, 4),
            holdout_examples=len(test.ids),
            holdout_accuracy=[{"task": t, "name": names[t], **a} for t, a in accuracy.items()],
            snapshot=snap.name if snap else None,
            **checks,
            timings={
                "encode": round(encoded - start, 4),
                "fit": round(fitted - encoded, 4),
                "memory": round(planned - fitted, 4),
                "commit": round(done - planned, 4),
            },
        )

    def _plan_exemplars(
        self, old: dict[str, Any], memory: Records, train: Records, n_classes: int, task_id: int
    ) -> tuple[dict[str, list[str]], Records]:
        """New live exemplar ids per label, and the new records to add to Chroma."""
        row = {i: r for r, i in enumerate(memory.ids)}
        current_x = {y: memory.x[[row[i] for i in ids]] for y, ids in old["exemplars"].items() if ids}
        plan = self.budget.plan(old["exemplars"], current_x, train.x, train.labels, n_classes, task_id)
        new_rows = [ref for refs in plan.values() for ref in refs if isinstance(ref, int)]
        exemplars = {y: [train.ids[r] if isinstance(r, int) else r for r in refs] for y, refs in plan.items()}
        return exemplars, train.take(new_rows)

    def _holdout_accuracy(
        self, old: dict[str, Any], state: dict[str, Any], both: Records, logits: torch.Tensor | None
    ) -> dict[int, dict[str, float | None]]:
        """Accuracy on every task's held-out slice (``both``, in ``state["holdout"]`` order, scored
        by the new head as ``logits``) before (old head) and after this learn. "Before" is what the
        learn that made the old head measured as its "after", when it is on record."""
        last = old["evaluation"][-1] if old["evaluation"] else None
        on_record = last["accuracy"] if last and old["tasks"] and last["after_task"] == old["tasks"][-1]["id"] else {}
        right = np.zeros(0, dtype=bool) if logits is None else _correct(logits, state["labels"], both)
        out: dict[int, dict[str, float | None]] = {}
        start = 0
        for key, ids in state["holdout"].items():
            rows = range(start, start + len(ids))
            start += len(ids)
            before = None
            if key in old["holdout"] and old["labels"]:
                before = on_record.get(key)
                if before is None:
                    recs = both.take(rows)
                    old_logits = self.strategy.logits(torch.from_numpy(recs.x))
                    before = 100.0 * float(_correct(old_logits, old["labels"], recs).mean())
            out[int(key)] = {"before": before, "after": 100.0 * float(right[rows.start : rows.stop].mean())}
        return out

    def _commit(
        self,
        state: dict[str, Any],
        strategy: Strategy,
        added: dict[str, Records],
        previous: dict[str, Records] | None = None,
    ) -> SnapshotInfo | None:
        """Add records, commit the state, drop what it no longer names. Call under the lock.
        Given ``previous`` (the current state's records, already loaded), the current state is
        first saved as an automatic snapshot, which is returned."""
        old = self.state
        snap = created = None
        if previous is not None and old["auto_snapshots"] > 0:
            name = f"{AUTO_PREFIX}{old['generation']:06d}"
            # On a server, a writer that raced us from the same state may have saved it already.
            if name not in self.snapshots.names():
                created = self._snapshot(name, previous)
            snap = created or next(s for s in self.snapshots.list() if s.name == name)
        try:
            for store, recs in added.items():
                self.stores[store].add(recs, generation=old["generation"] + 1)
            state = self.workspace.commit(state, strategy.tensors() if strategy.n_classes else {})
        except BaseException:
            for store, recs in added.items():  # this process cleans up after itself
                self.stores[store].delete(recs.ids)
            if created is not None:
                self.snapshots.delete(created.name)
            raise
        for store in STORES:
            self.stores[store].delete(set(_live(old, store)) - set(_live(state, store)))
        self._adopt(state, strategy)
        autos = self.snapshots.auto_names()
        for name in autos[: max(0, len(autos) - state["auto_snapshots"])]:
            with contextlib.suppress(InvalidInputError):  # another writer trimmed it first
                self.snapshots.delete(name)
        _, in_use = self.snapshots.tidy(min_age=ORPHAN_AGE if self.workspace.shared else 0.0)
        self.workspace.collect_garbage(state, keep=in_use)
        return snap

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Take this process's turn to write, catch up with other writers, clear crash leftovers
        (on a shared server only old ones: young ones may be another writer's work in progress;
        unfinished snapshot files go after the next commit, :meth:`Snapshots.tidy`)."""
        with self.workspace.writing():
            latest = self.workspace.read_state()
            if latest["generation"] != self.state["generation"]:
                self._adopt(latest)
            age = ORPHAN_AGE if self.workspace.shared else 0.0
            self.workspace.clean_temporary(older_than=age)
            if self.workspace.shared or not self._pruned:  # embedded: only a dead process leaves orphans
                for store in STORES:
                    self.stores[store].prune(_live(self.state, store), min_age=age)
                self._pruned = True
            yield

    def _attempts(self) -> Iterator[contextlib.AbstractContextManager[None]]:
        """``for attempt in self._attempts(): with attempt: ...`` runs the block as one write,
        and again on top of the newer state while another writer commits first."""
        for n in range(RETRIES):
            done: list[bool] = []
            yield self._attempt(done, last=n == RETRIES - 1)
            if done:
                return
            time.sleep(random.uniform(0.02, 0.2) * (1 + n))

    @contextmanager
    def _attempt(self, done: list[bool], last: bool) -> Iterator[None]:
        with self._writing():
            try:
                yield
            except Conflict:
                if last:
                    raise
                return
        done.append(True)

    # ----------------------------------------------------------------- snapshots
    def snapshot(self, name: str | None = None) -> SnapshotInfo:
        """Save the workspace as it is now under ``name`` (default: a timestamp)."""
        name = check_name(datetime.now(timezone.utc).strftime("snap-%Y%m%d-%H%M%S") if name is None else name)
        if name.startswith(AUTO_PREFIX):
            raise InvalidInputError(f"names starting with {AUTO_PREFIX!r} are kept for automatic snapshots")
        with self._writing():
            info = self._snapshot(name)
        if info is None:
            raise InvalidInputError(f"snapshot {name!r} already exists")
        return info

    def _snapshot(self, name: str, records: dict[str, Records] | None = None) -> SnapshotInfo | None:
        if records is None:
            records = {store: self.stores[store].load(_live(self.state, store)) for store in STORES}
        return self.snapshots.create(name, _now(), self.state, records)

    def list_snapshots(self) -> list[SnapshotInfo]:
        return self.snapshots.list()

    def delete_snapshot(self, name: str) -> None:
        with self._writing():
            self.snapshots.delete(name)

    def restore(self, name: str) -> SnapshotInfo:
        """Bring back the head, EWC state, labels, tasks and Chroma records of snapshot ``name``,
        all at once or not at all. The current state is snapshotted first (``auto-``)."""
        for attempt in self._attempts():
            with attempt:
                info = self._restore(name)
        return info

    def _restore(self, name: str) -> SnapshotInfo:
        info = next((s for s in self.snapshots.list() if s.name == check_name(name)), None)
        if info is None:
            raise InvalidInputError(f"no snapshot named {name!r}")
        saved, tensors, records = self.snapshots.load(name)
        if saved["model"] != self.state["model"]:
            raise ModelMismatchError(f"snapshot {name!r} was made with model {saved['model']!r}")
        strategy = strategies.make(saved["strategy"]["name"], saved["strategy"]["config"])
        if tensors:
            strategy.load_tensors(tensors)
        present = {store: self.stores[store].all_ids() for store in STORES}
        missing = {s: r.take([i for i, rid in enumerate(r.ids) if rid not in present[s]]) for s, r in records.items()}
        state = {**saved, "generation": self.state["generation"], "auto_snapshots": self.state["auto_snapshots"]}
        # Restoring a named snapshot saves the present first; a rollback (auto) does not.
        current = None if info.auto else {st: self.stores[st].load(_live(self.state, st)) for st in STORES}
        self._commit(state, strategy, missing, previous=current)
        return info

    def rollback(self) -> SnapshotInfo:
        """Undo the last learn (or restore): restore the newest automatic snapshot and drop it."""
        autos = [s for s in self.snapshots.list() if s.auto]
        if not autos:
            raise InvalidInputError("nothing to roll back: no automatic snapshot is left")
        info = self.restore(autos[-1].name)
        self.delete_snapshot(info.name)
        return info

    def doctor(self, orphan_age: float | None = None) -> Diagnosis:
        """Check that head, metadata, memory and snapshots agree, and clean what interrupted
        operations left (on a server, only leftovers older than ``orphan_age`` seconds)."""
        from agent_il.doctor import diagnose

        if orphan_age is None:
            orphan_age = ORPHAN_AGE if self.workspace.shared else 0.0
        return diagnose(self, orphan_age=orphan_age)

    # ----------------------------------------------------------------- predicting
    def predict(self, texts: Sequence[str], k: int = 3, evidence: int = 3, inbox: bool = True) -> list[Prediction]:
        """Best label, its confidence, the top ``k`` labels, and the ``evidence`` nearest stored
        exemplars for each text. A text that fits no known intent gets the label ``unknown``
        (``known=False``) and, unless ``inbox=False``, waits in the inbox for ``discover``."""
        texts = validation.texts(texts)
        self._check_predict_args(k, evidence)
        return self._predict(self._encode(texts), k, evidence, texts, inbox)

    def predict_vectors(self, vectors: Any, k: int = 3, evidence: int = 3, inbox: bool = True) -> list[Prediction]:
        x = validation.vectors(vectors, self.state["dim"])
        self._check_predict_args(k, evidence)
        return self._predict(x, k, evidence, None, inbox)

    def _check_predict_args(self, k: int, evidence: int) -> None:
        self.refresh()  # on a server, answer with what other agents have learned meanwhile
        validation.positive_int(k, "k")
        if isinstance(evidence, bool) or not isinstance(evidence, int) or evidence < 0:
            raise InvalidInputError(f"evidence must be a non-negative integer, got {evidence!r}")
        if not self.state["labels"]:
            raise WorkspaceError(f"{self.location} has learned nothing yet; call learn() first")

    def _predict(
        self, x: np.ndarray, k: int, evidence: int, texts: list[str] | None = None, inbox: bool = True
    ) -> list[Prediction]:
        logits = self.strategy.logits(torch.from_numpy(x))
        probs = torch.softmax(logits, dim=-1)
        top_p, top_i = probs.topk(min(k, probs.shape[1]), dim=-1)
        scores, kept = knowledge.reject(self, logits, x)
        labels = self.state["labels"]
        near = knowledge.exemplars(self).nearest(x, evidence, self.memory)
        out = []
        for n, (p_row, i_row, ev) in enumerate(zip(top_p.tolist(), top_i.tolist(), near)):
            top = [(labels[i], float(p)) for p, i in zip(p_row, i_row)]
            score = None if scores is None else float(scores[n])
            label = top[0][0] if kept[n] else UNKNOWN
            out.append(Prediction(label, top[0][1], top, ev, known=bool(kept[n]), score=score))
        if inbox and scores is not None and not kept.all():
            rows = np.flatnonzero(~kept)
            texts_ = [texts[r] if texts is not None else None for r in rows]
            self.add_to_inbox(x[rows], texts_, [out[r].top_k[0][0] for r in rows], scores[rows])
        return out

    # ----------------------------------------------------------------- knowing what it does not know
    def calibration(self) -> dict[str, Any] | None:
        """The rejection setting: score, target keep rate, threshold, and what it was calibrated on."""
        return self.state.get("ood")

    def calibrate(
        self,
        *,
        keep: float | None = None,
        threshold: float | None = None,
        texts: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        oos_label: str = "oos",
    ) -> dict[str, Any]:
        """Set the rejection threshold: for an in-scope keep rate, to a score, or fitted on labelled
        examples (``labels`` equal to ``oos_label`` or ``unknown`` are out of scope, the others known
        intents). The workspace keeps the matching keep rate, so later learns recalibrate to it."""
        given = [keep is not None, threshold is not None, texts is not None]
        if sum(given) != 1:
            raise InvalidInputError("give exactly one of keep, threshold, or labelled texts")
        for attempt in self._attempts():
            with attempt:
                cal = self._calibrated(keep, threshold, texts, labels, oos_label)
                state = {**copy.deepcopy(self.state), "ood": cal, "updated": _now()}
                self._commit(state, self.strategy, {})
        return {k: v for k, v in cal.items() if k not in ("quantiles", "norm")}

    def _calibrated(
        self,
        keep: float | None,
        threshold: float | None,
        texts: Sequence[str] | None,
        labels: Sequence[str] | None,
        oos_label: str,
    ) -> dict[str, Any]:

        cal = self.state.get("ood")
        if cal is None:
            raise InvalidInputError("nothing to calibrate yet: learn first")
        cal = copy.deepcopy(cal)
        if keep is not None:
            cal.update(keep=ood.check_keep(keep), mode="set")
            cal["threshold"] = ood.threshold_for_keep(cal["quantiles"], cal["keep"])
        elif threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, int | float):
                raise InvalidInputError(f"threshold must be a number, got {threshold!r}")
            cal.update(threshold=float(threshold), mode="set")
            cal["keep"] = ood.keep_for_threshold(cal["quantiles"], cal["threshold"])
        else:
            texts = validation.texts(texts)
            label_list = validation.labels(labels, len(texts), allow_unknown=True)
            outside = [y in (oos_label, UNKNOWN) for y in label_list]
            strange = sorted({y for y, o in zip(label_list, outside) if not o and y not in self.state["labels"]})
            if strange:
                raise InvalidInputError(
                    f"labels neither known nor {oos_label!r}: {', '.join(strange[:5])}; "
                    "label out-of-scope rows with --oos-label"
                )
            if not any(outside):
                raise InvalidInputError(f"no out-of-scope rows (label {oos_label!r}) to fit the threshold on")
            x = self._encode(texts)
            logits = self.strategy.logits(torch.from_numpy(x))
            head = ood.head_logits(self.strategy, torch.from_numpy(x))
            scores = ood.score(cal["score"], ood.components(head, x, knowledge.exemplars(self).stats), cal["norm"])
            out_mask = np.array(outside)
            right = np.array([self.state["labels"][i] == y for i, y in zip(logits.argmax(1).tolist(), label_list)])
            in_scores, in_right = scores[~out_mask], right[~out_mask]
            if not len(in_scores):  # only out-of-scope rows: the in-scope side is the calibration
                in_scores, in_right = np.asarray(cal["quantiles"]), np.ones(len(cal["quantiles"]), dtype=bool)
            cal["threshold"] = ood.fit_threshold(in_scores, in_right, scores[out_mask])
            cal.update(keep=ood.keep_for_threshold(cal["quantiles"], cal["threshold"]), mode="fitted")
            cal["fitted_on"] = {"in_scope": int((~out_mask).sum()), "out_of_scope": int(out_mask.sum())}
        return cal

    def confusions(self, top: int = 10) -> list[dict[str, Any]]:
        """The most confused pairs of intents, with the rate, the examples and the prototype similarity."""
        validation.positive_int(top, "top")
        self.refresh()
        return knowledge.confusions(self, top)

    @property
    def inbox_store(self) -> RecordStore:
        return self.stores["inbox"]

    def add_to_inbox(
        self, x: np.ndarray, texts: list[str | None], closest: list[str], scores: Sequence[float]
    ) -> list[str]:
        """Keep inputs the agent could not place (``report_unknown``); returns their inbox ids."""
        recs = knowledge.inbox_records(x, texts, closest, np.asarray(scores, dtype=np.float64))
        seen = self.inbox_store.existing(recs.ids)
        fresh = []
        for i, rid in enumerate(recs.ids):
            if rid not in seen:
                seen.add(rid)
                fresh.append(i)
        self.inbox_store.add(recs.take(fresh))
        if fresh and (excess := self.inbox_store.count() - self.inbox_limit) > 0:
            # A tenth more than the excess goes, so a full inbox reads its metadata once per
            # ~limit/10 additions, not on every rejected input.
            self.inbox_store.delete(self.inbox_store.oldest(excess + self.inbox_limit // 10))
        return recs.ids

    def inbox(self) -> Records:
        """Everything in the inbox, oldest first."""
        recs = self.inbox_store.load(sorted(self.inbox_store.all_ids()))
        return recs.take(sorted(range(len(recs.ids)), key=lambda i: (recs.metadatas[i]["time"], recs.ids[i])))

    def discover(self, distance: float | None = None, min_size: int | None = None) -> list[Any]:
        """Cluster the inbox into candidate new intents (agent_il.discovery), largest first."""
        from agent_il import discovery

        return discovery.cluster(
            self.inbox(),
            distance=discovery.DISTANCE if distance is None else distance,
            min_size=discovery.MIN_SIZE if min_size is None else validation.positive_int(min_size, "min_size"),
        )

    def learn_inbox(self, key: str, label: str, **discover_args: Any) -> LearnReport:
        """Learn the inbox cluster ``key`` (as ``discover`` shows it now) as intent ``label``
        through the normal learn path, then take its items out of the inbox."""
        label = validation.labels([label], 1)[0]
        found = next((c for c in self.discover(**discover_args) if c.key == key), None)
        if found is None:
            raise InvalidInputError(f"no inbox cluster {key!r} now; run discover again (the inbox may have changed)")
        recs = self.inbox_store.load(found.ids)
        texts = recs.texts if all(t is not None for t in recs.texts) else None
        report = self.learn_vectors(recs.x, [label] * len(recs.ids), task=f"inbox-{label}", texts=texts)
        self.inbox_store.delete(found.ids)
        return report

    def forget_inbox(self, ids: Sequence[str] | None = None) -> int:
        """Drop these inbox items (all when ``ids`` is None); returns how many were there."""
        present = self.inbox_store.all_ids()
        gone = present if ids is None else present & set(ids)
        self.inbox_store.delete(gone)
        return len(gone)

    # ----------------------------------------------------------------- evaluating
    def evaluate(self, texts: Sequence[str], labels: Sequence[str]) -> FileEvaluation:
        """Accuracy on a labelled set, overall, per class and per task that introduced the class."""
        texts = validation.texts(texts)
        label_list = validation.labels(labels, len(texts))
        self._check_predict_args(1, 0)
        predicted = [
            self.state["labels"][i]
            for i in self.strategy.logits(torch.from_numpy(self._encode(texts))).argmax(1).tolist()
        ]
        hits = [p == y for p, y in zip(predicted, label_list)]
        introduced = {y: t for t in self.state["tasks"] for y in t["new_classes"]}
        groups: dict[str, list[bool]] = {}
        tasks: dict[str, list[bool]] = {}
        for y, hit in zip(label_list, hits):
            groups.setdefault(y, []).append(hit)
            if y in introduced:
                tasks.setdefault(str(introduced[y]["id"]), []).append(hit)
        names = {str(t["id"]): t["name"] for t in self.state["tasks"]}
        return FileEvaluation(
            examples=len(hits),
            accuracy=100.0 * sum(hits) / len(hits),
            per_class={y: {"accuracy": 100.0 * sum(h) / len(h), "examples": len(h)} for y, h in groups.items()},
            per_task={
                t: {"name": names[t], "accuracy": 100.0 * sum(h) / len(h), "examples": len(h)}
                for t, h in sorted(tasks.items(), key=lambda kv: int(kv[0]))
            },
            unknown_labels=sorted(y for y in groups if y not in introduced),
        )

    # ----------------------------------------------------------------- encoding
    def _encode(self, texts: list[str], on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        dim = self.state["dim"]
        if dim is not None and self.encoder.dim != dim:
            raise ModelMismatchError(f"encoder gives dimension {self.encoder.dim}; this workspace holds {dim}")
        if self._cache is None:
            self._cache = EmbeddingCache(self.workspace.cache_path(self.encoder.model_id), self.encoder.dim)
        return self.encoder.encode(texts, cache=self._cache, on_progress=on_progress)


def _correct(logits: torch.Tensor, labels: list[str], recs: Records) -> np.ndarray:
    """Whether the head's ``logits`` of ``recs`` label each one right."""
    index = {y: i for i, y in enumerate(labels)}
    return logits.argmax(1).numpy() == np.array([index.get(y, -1) for y in recs.labels], dtype=np.int64)


def _split_holdout(batch: Records, fraction: float, seed: int) -> tuple[Records, Records]:
    """Stratified split: that fraction of each class (at least one, never all) is held out."""
    if fraction == 0:
        return batch, batch.take([])
    rng = np.random.default_rng([seed, 7])
    by_label: dict[str, list[int]] = {}
    for i, y in enumerate(batch.labels):
        by_label.setdefault(y, []).append(i)
    test: list[int] = []
    for rows in by_label.values():
        if len(rows) >= 2:
            k = min(len(rows) - 1, max(1, round(fraction * len(rows))))
            test += [rows[j] for j in rng.permutation(len(rows))[:k]]
    held = set(test)
    return batch.take([i for i in range(len(batch.ids)) if i not in held]), batch.take(sorted(held))


def _new_state(
    model: str | None,
    strategy: str | None,
    strategy_config: dict[str, Any] | None,
    memory_per_class: int | None,
    memory_total: int | None,
    selection: str | None,
    auto_snapshots: int | None,
) -> dict[str, Any]:
    per_class, total = memory_per_class, memory_total
    if total is not None and per_class is not None:
        raise InvalidInputError("give memory_per_class or memory_total, not both")
    name = strategy or strategies.DEFAULT_STRATEGY
    strategies.make(name, strategy_config)  # validates name and options
    budget = MemoryBudget(
        per_class=None if total is not None else (20 if per_class is None else per_class),
        total=total,
        selection=selection or "herding",
    )
    keep = 10 if auto_snapshots is None else auto_snapshots
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise InvalidInputError(f"auto_snapshots must be a non-negative integer, got {keep!r}")
    return {
        "created": _now(),
        "updated": _now(),
        "model": model or normalise_model_id(None),
        "dim": None,
        "strategy": {"name": name, "config": strategy_config or {}},
        "memory": budget.to_dict(),
        "auto_snapshots": keep,
        "labels": [],
        "tasks": [],
        "exemplars": {},
        "holdout": {},
        "evaluation": [],
    }


def _stored_settings(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": state["model"],
        "strategy": state["strategy"]["name"],
        "strategy_config": state["strategy"]["config"],
        "memory_per_class": state["memory"]["per_class"],
        "memory_total": state["memory"]["total"],
        "selection": state["memory"]["selection"],
        "auto_snapshots": state["auto_snapshots"],
    }


def _check_same(state: dict[str, Any], asked: dict[str, Any]) -> None:
    """Settings given when reopening must be the ones the workspace was created with."""
    for what, stored in _stored_settings(state).items():
        value = asked[what]
        if value is None or value == stored:
            continue
        if what == "model":
            raise ModelMismatchError(f"workspace was built with model {stored!r}, not {value!r}")
        raise InvalidInputError(f"workspace was created with {what}={stored!r}; it cannot change to {value!r}")
