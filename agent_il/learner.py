"""The facade: ``IntentLearner.open(path)`` then ``learn`` / ``predict``. It owns the transactions
(:mod:`agent_il.storage.transaction`) and hands each part the state, stores and head it needs: the
learn step (:mod:`agent_il.engine`), rejection (:mod:`agent_il.ood`), inbox, history, doctor."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agent_il import opening, validation
from agent_il.concurrency import Concurrency
from agent_il.config import WorkspaceConfig
from agent_il.consolidation import Consolidation
from agent_il.editing import Editing
from agent_il.encoding.cache import EmbeddingCache
from agent_il.encoding.encoder import Encoder
from agent_il.engine import predict as predicting
from agent_il.engine.metrics import FileEvaluation
from agent_il.errors import DamagedError, InvalidInputError, ModelMismatchError, WorkspaceError
from agent_il.inbox.inbox import Inbox
from agent_il.memory.records import Records
from agent_il.memory.store import RecordStore
from agent_il.ood.calibration import Calibrator
from agent_il.ood.evidence import Exemplars
from agent_il.ood.scores import ClassStats
from agent_il.results import LearnReport, Prediction, Task
from agent_il.state import WorkspaceState
from agent_il.storage import open_workspace
from agent_il.storage.base import Workspace
from agent_il.storage.history import History
from agent_il.storage.snapshots import SnapshotInfo
from agent_il.storage.transaction import Transactions
from agent_il.strategies.base import Strategy
from agent_il.strategies.heads import Head, head_of, load_head
from agent_il.upkeep import Upkeep


class IntentLearner(Editing, Upkeep, Consolidation, Concurrency):
    """Class-incremental intent classifier over frozen sentence embeddings, persisted in a
    workspace. Labels may be new or known in any ``learn``; no task id is needed to predict.
    ``snapshots`` (the history), ``inbox`` (inputs it could not place) and ``calibrator`` (when
    it answers ``unknown``) are its parts."""

    def __init__(self, workspace: Workspace, state: WorkspaceState, encoder: Encoder) -> None:
        self.workspace = workspace
        self.encoder = encoder
        self._encoders = {(encoder.model_id, encoder.chosen): encoder}  # a migration's both sides
        self._inboxes: dict[str, Inbox] = {}
        self.snapshots = History(workspace.blobs, workspace.record_stores, lambda: self.state)
        self.calibrator = Calibrator(lambda: self.state)
        self._tx = Transactions(workspace, self.snapshots, lambda: self.state, self._adopt)
        self._cache: EmbeddingCache | None = None
        self._evidence: tuple[tuple[int, str], Exemplars] | None = None
        self._stats: tuple[list[str], list[str], ClassStats] | None = None  # exemplar ids, labels, theirs
        self._checkpoint_lost = False  # the statistics blob was unreadable: the next commit writes one
        self._adopt(state)

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
        backend: str | None = None,
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

        ``backend`` (``torch``, ``onnx``, ``onnx-int8``; None or ``auto``: the workspace's own, and
        for a new one torch on CUDA, ONNX Runtime on the CPU) is how the encoder runs.

        With ``chroma_url`` the workspace ``name`` lives on that Chroma server (in ``tenant`` /
        ``database``) and is shared with every process that opens it there; without it, ``path``
        is a directory with an embedded Chroma that one process at a time may open (another one
        waits ``wait`` seconds, then gets :class:`agent_il.storage.local.WorkspaceBusyError`)."""
        wait = validation.wait_seconds(wait)  # AGENT_IL_WAIT / --wait reach here: no NaN, no negative
        ws = open_workspace(path, chroma_url=chroma_url, name=name, tenant=tenant, database=database, wait=wait)
        try:
            asked = {
                "strategy": strategy,
                "strategy_config": strategy_config,
                "memory_per_class": memory_per_class,
                "memory_total": memory_total,
                "selection": selection,
                "auto_snapshots": auto_snapshots,
            }
            state, encoder = opening.state_and_encoder(ws, asked, create, model, backend, encoder, device)
            return cls(ws, state, encoder)
        except DamagedError as exc:
            ws.close()
            raise DamagedError(
                f"{exc}; `agent-il doctor` lists what is damaged and which snapshots are intact, "
                "`agent-il doctor --repair` goes back to the newest intact one"
            ) from exc
        except BaseException:
            ws.close()
            raise

    def _adopt(self, state: WorkspaceState, strategy: Strategy | None = None) -> None:
        """Take ``state`` (and the ``strategy`` a commit of this process fitted): its head for
        predicts, read as arrays; the strategy itself (torch) only when a learn or an edit asks."""
        arrays: dict[str, np.ndarray] = {}
        head: Head | None = None
        try:
            if strategy is not None:
                head = head_of(strategy) if strategy.n_classes else None
            elif state.weights is not None:
                arrays = self.workspace.read_tensors(state.to_json())
                head = load_head(state.config.strategy, state.config.strategy_config, arrays)
                strategy = getattr(head, "strategy", None)
        except ValueError as exc:
            raise WorkspaceError(f"{self.location}: cannot load its head: {exc}") from exc
        classes = head.n_classes if head is not None else 0
        if classes != len(state.labels):
            raise WorkspaceError(f"{self.location}: head has {classes} classes, labels list {len(state.labels)}")
        self._use_encoder(state)
        self.state, self._head, self._strategy, self._arrays = state, head, strategy, arrays
        self._served = (state, head)  # what a predict reads, in one assignment (agent_il.concurrency)

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

    @property
    def config(self) -> WorkspaceConfig:
        return self.state.config

    def refresh(self) -> bool:
        """Adopt the newest committed state if another process committed one; returns whether it did."""
        if not self.workspace.shared or self.workspace.latest_generation() == self.state.generation:
            return False  # embedded: this process is the only writer; on a server one small request
        for _ in range(3):  # the state read may be collected under us by a fast writer
            try:
                self._adopt(WorkspaceState.from_json(self.workspace.read_state(), self.location))
                return True
            except WorkspaceError:
                continue
        raise WorkspaceError(f"{self.location}: the state changed too fast to read")

    @property
    def labels(self) -> list[str]:
        return list(self.state.labels)

    @property
    def tasks(self) -> list[Task]:
        return list(self.state.tasks)

    @property
    def memory(self) -> RecordStore:
        return self.stores["exemplars"]

    def exemplar_counts(self) -> dict[str, int]:
        return {label: len(ids) for label, ids in self.state.exemplars.items()}

    def status(self) -> dict[str, Any]:
        self.refresh()
        return {
            "path": self.location,
            **self.state.summary(),
            "snapshots": len(self.snapshots.names()),
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
        ``holdout`` keeps that fraction of each class aside as the task's test slice (a block of
        its rows in the order given: see :func:`agent_il.engine.step.split_holdout`);
        ``on_progress(done, total)`` follows the encoding, the slow part."""
        texts = validation.texts(texts, max_chars=validation.max_text_chars())
        label_list = validation.labels(labels, len(texts))
        task = validation.task_name(task)
        holdout = validation.holdout(holdout)
        start = time.perf_counter()
        return self._learn(self._encode(texts, on_progress), label_list, texts, task, holdout, start, "texts")

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
        x = validation.vectors(vectors, self.state.dim)
        label_list = validation.labels(labels, len(x))
        if texts is not None:
            texts = validation.texts(texts, max_chars=validation.max_text_chars())
            if len(texts) != len(x):
                raise InvalidInputError(f"got {len(x)} vectors but {len(texts)} texts")
        task = validation.task_name(task)
        return self._learn(x, label_list, texts, task, validation.holdout(holdout), start, "vectors")

    def _learn(
        self,
        x: np.ndarray,
        labels: list[str],
        texts: list[str] | None,
        task: str | None,
        holdout: float,
        start: float,
        source: str,
    ) -> LearnReport:
        from agent_il.engine import step

        encoded = time.perf_counter()
        for attempt in self._tx.attempts():
            with attempt:
                old = self.state
                batch = step.batch(x, labels, texts, task, len(old.tasks) + 1, source)
                committed = self.snapshots.records(old)
                memory, held = committed["exemplars"], committed["holdout"]
                done = step.learn(
                    old, self._with_statistics(), batch, memory, held, holdout, start, encoded, self._class_stats(old)
                )
                planned = time.perf_counter()
                # The exemplars are some of the examples: stored apart only where examples are not kept.
                kept = {"examples": done.train} if old.examples is not None else {"exemplars": done.added}
                added = {"holdout": done.test, **kept}
                snap = self._commit(done.state, done.strategy, added, snapshot=True, statistics="due")
        finished = time.perf_counter()
        if done.stats is not None:
            self._stats = (done.state.live("exemplars"), list(done.state.labels), done.stats)
        timings = {"encode": round(encoded - start, 4), **done.timings, "commit": round(finished - planned, 4)}
        return done.report(old, snap.name if snap else None, round(finished - start, 4), timings)

    def _commit(
        self,
        state: WorkspaceState,
        strategy: Strategy,
        added: dict[str, Records],
        snapshot: bool = False,
        statistics: Literal["keep", "due", "write"] = "keep",
    ) -> SnapshotInfo | None:
        """Commit ``state`` with ``strategy``'s weights and, as :meth:`_statistics_to_write` says,
        its statistics."""
        tensors = strategy.tensors() if strategy.n_classes else {}
        stats = self._statistics_to_write(state, strategy, statistics)
        if state.examples is None and stats:  # nothing to derive them from: every generation keeps them
            tensors, stats = {**tensors, **stats}, None
        snap = self._tx.commit(state, tensors, added, lambda s: self._adopt(s, strategy), snapshot, stats)
        if stats is not None:
            self._checkpoint_lost = False
        return snap

    def learn_inbox(self, key: str, label: str, **discover_args: Any) -> LearnReport:
        """Learn the inbox cluster ``key`` (as ``inbox.discover`` shows it now) as intent ``label``
        through the normal learn path, then take its items out of the inbox."""
        label = validation.labels([label], 1)[0]
        recs = self.inbox.cluster_records(key, **discover_args)
        texts = recs.texts if all(t is not None for t in recs.texts) else None
        report = self._learn(
            recs.x, [label] * len(recs.ids), texts, f"inbox-{label}", 0.0, time.perf_counter(), "inbox"
        )
        self.inbox.forget(recs.ids)
        return report

    # ----------------------------------------------------------------- predicting
    def predict(self, texts: Sequence[str], k: int = 3, evidence: int = 3, inbox: bool = True) -> list[Prediction]:
        """Best label, its confidence, the top ``k`` labels, and the ``evidence`` nearest stored
        exemplars for each text. A text that fits no known intent gets the label ``unknown``
        (``known=False``) and, unless ``inbox=False``, waits in the inbox for ``discover``."""
        texts = validation.texts(texts)
        self._check_predict_args(k, evidence)
        return self._predict(self._encode(texts), k, evidence, texts, inbox)

    def predict_vectors(self, vectors: Any, k: int = 3, evidence: int = 3, inbox: bool = True) -> list[Prediction]:
        x = validation.vectors(vectors, self.state.dim)
        self._check_predict_args(k, evidence)
        return self._predict(x, k, evidence, None, inbox)

    def _check_predict_args(self, k: int, evidence: int) -> None:
        self.refresh()  # on a server, answer with what other agents have learned meanwhile
        validation.positive_int(k, "k")
        validation.non_negative_int(evidence, "evidence")
        if not self.state.labels:
            raise WorkspaceError(f"{self.location} has learned nothing yet; call learn() first")

    def _predict(self, x: np.ndarray, k: int, evidence: int, texts: list[str] | None, inbox: bool) -> list[Prediction]:
        state, head = self._generation()
        out, scores = predicting.predict(state, head, self._exemplars(state), x, k, evidence, self.memory)
        if inbox and scores is not None and not all(p.known for p in out):
            rows = [r for r, p in enumerate(out) if not p.known]
            closest = [out[r].top_k[0][0] for r in rows]
            self.inbox.add(x[rows], [texts[r] if texts is not None else None for r in rows], closest, scores[rows])
        return out

    def _class_stats(self, state: WorkspaceState) -> ClassStats | None:
        """The class statistics of ``state``'s exemplars, if this process's last learn made them."""
        if self._stats is None or self._stats[1] != state.labels or self._stats[0] != state.live("exemplars"):
            return None
        return self._stats[2]

    # ----------------------------------------------------------------- knowing what it does not know
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
        if sum(v is not None for v in (keep, threshold, texts)) != 1:
            raise InvalidInputError("give exactly one of keep, threshold, or labelled texts")
        threshold = None if threshold is None else validation.threshold(threshold)
        if self.state.calibration is None:
            raise InvalidInputError("nothing to calibrate yet: learn first")
        fit = None
        if texts is not None:
            fit = self.calibrator.labelled(
                self.state, self.strategy, lambda: self._exemplars(self.state), texts, labels, oos_label, self._encode
            )
        for attempt in self._tx.attempts():
            with attempt:
                self._commit(self.calibrator.adjusted(self.state, keep, threshold, fit), self.strategy, {})
        return {k: v for k, v in (self.state.rejection_json() or {}).items() if k not in ("quantiles", "norm")}

    # ----------------------------------------------------------------- evaluating
    def evaluate(self, texts: Sequence[str], labels: Sequence[str]) -> FileEvaluation:
        """Accuracy on a labelled set, overall, per class and per task that introduced the class."""
        texts = validation.texts(texts)
        label_list = validation.labels(labels, len(texts))
        self._check_predict_args(1, 0)
        best = self.head.raw_scores(self._encode(texts)).argmax(1).tolist()
        return FileEvaluation.of([self.state.labels[i] for i in best], label_list, self.state.tasks)

    def _encode(self, texts: list[str], on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        dim = self.state.dim
        if dim is not None and self.encoder.dim != dim:
            raise ModelMismatchError(f"encoder gives dimension {self.encoder.dim}; this workspace holds {dim}")
        if self._cache is None:
            self._cache = EmbeddingCache(self.workspace.cache_path(self.encoder.cache_id), self.encoder.dim)
        return self.encoder.encode(texts, cache=self._cache, on_progress=on_progress)
