"""The facade: ``IntentLearner.open(path)`` then ``learn`` / ``predict``.

A learn is a transaction. Everything is computed on copies; then new exemplars are added to
Chroma, the workspace commits (one atomic rename), and only then are dropped exemplars deleted.
An error anywhere before the rename leaves disk and the in-process learner exactly as before.
"""

from __future__ import annotations

import copy
import os
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent_il import strategies, validation
from agent_il.budget import MemoryBudget
from agent_il.embedding_cache import EmbeddingCache
from agent_il.encoder import Encoder, normalise_model_id
from agent_il.errors import InvalidInputError, ModelMismatchError, WorkspaceError
from agent_il.memory import ExemplarMemory, embedded_client
from agent_il.results import LearnReport, Prediction, Task
from agent_il.workspace import Timeout, Workspace


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class IntentLearner:
    """Class-incremental intent classifier over frozen sentence embeddings, persisted in a
    workspace directory. Labels may be new or known in any ``learn``; no task id is needed to
    predict."""

    def __init__(self, workspace: Workspace, state: dict[str, Any], encoder: Encoder, memory: ExemplarMemory) -> None:
        self.workspace = workspace
        self.encoder = encoder
        self.memory = memory
        self._cache: EmbeddingCache | None = None
        self._adopt(state)

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        model: str | os.PathLike[str] | None = None,
        strategy: str | None = None,
        strategy_config: dict[str, Any] | None = None,
        memory_per_class: int | None = None,
        memory_total: int | None = None,
        selection: str | None = None,
        encoder: Encoder | None = None,
        device: str | None = None,
        create: bool = True,
    ) -> IntentLearner:
        """Open the workspace at ``path``, creating it (with these settings) if it does not exist.
        Settings given for an existing workspace must match what it was created with."""
        ws = Workspace(path)
        wanted_model = encoder.model_id if encoder is not None else (normalise_model_id(model) if model else None)
        if ws.exists():
            state = ws.read_state()
            _check_same(state, wanted_model, strategy, strategy_config, memory_per_class, memory_total, selection)
        elif not create:
            raise WorkspaceError(f"no agent-il workspace at {ws.root}")
        else:
            if memory_total is not None and memory_per_class is not None:
                raise InvalidInputError("give memory_per_class or memory_total, not both")
            name = strategy or strategies.DEFAULT_STRATEGY
            strategies.make(name, strategy_config)  # validates name and options
            budget = MemoryBudget(
                per_class=None if memory_total is not None else (20 if memory_per_class is None else memory_per_class),
                total=memory_total,
                selection=selection or "herding",
            )
            ws.create(
                {
                    "created": _now(),
                    "updated": _now(),
                    "model": wanted_model or normalise_model_id(None),
                    "dim": None,
                    "strategy": {"name": name, "config": strategy_config or {}},
                    "memory": budget.to_dict(),
                    "labels": [],
                    "tasks": [],
                    "exemplars": {},
                }
            )
            state = ws.read_state()
        encoder = encoder or Encoder(state["model"], device=device)
        memory = ExemplarMemory(embedded_client(ws.chroma_dir))
        return cls(ws, state, encoder, memory)

    def _adopt(self, state: dict[str, Any]) -> None:
        strategy = strategies.make(state["strategy"]["name"], state["strategy"]["config"])
        if state["weights"] is not None:
            strategy.load_tensors(self.workspace.read_tensors(state))
        if strategy.n_classes != len(state["labels"]):
            raise WorkspaceError(
                f"{self.workspace.root}: head has {strategy.n_classes} classes, labels list {len(state['labels'])}"
            )
        self.state, self.strategy = state, strategy
        self.budget = MemoryBudget(**state["memory"])

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def __enter__(self) -> IntentLearner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reading
    @property
    def path(self) -> Path:
        return self.workspace.root

    @property
    def labels(self) -> list[str]:
        return list(self.state["labels"])

    @property
    def tasks(self) -> list[Task]:
        return [Task.from_dict(t) for t in self.state["tasks"]]

    @property
    def strategy_name(self) -> str:
        return str(self.state["strategy"]["name"])

    def exemplar_counts(self) -> dict[str, int]:
        return {label: len(ids) for label, ids in self.state["exemplars"].items()}

    # ----------------------------------------------------------------- learning
    def learn(self, texts: Sequence[str], labels: Sequence[str], task: str | None = None) -> LearnReport:
        """Learn labelled texts as one task. New labels grow the head; known labels get more data."""
        texts = validation.texts(texts)
        label_list = validation.labels(labels, len(texts))
        task = validation.task_name(task)
        start = time.perf_counter()
        x = self._encode(texts)
        return self._learn(x, label_list, texts, task, start)

    def learn_vectors(
        self,
        vectors: Any,
        labels: Sequence[str],
        task: str | None = None,
        texts: Sequence[str] | None = None,
    ) -> LearnReport:
        """The same engine on any feature vectors (n x d); ``texts`` are kept as evidence if given."""
        start = time.perf_counter()
        x = validation.vectors(vectors, self.state["dim"])
        label_list = validation.labels(labels, len(x))
        if texts is not None:
            texts = validation.texts(texts)
            if len(texts) != len(x):
                raise InvalidInputError(f"got {len(x)} vectors but {len(texts)} texts")
        return self._learn(x, label_list, texts, validation.task_name(task), start)

    def _learn(
        self, x: np.ndarray, labels: list[str], texts: list[str] | None, task: str | None, start: float
    ) -> LearnReport:
        encoded = time.perf_counter()
        try:
            lock = self.workspace.lock()
            lock.acquire()
        except Timeout:
            raise WorkspaceError(f"{self.path} is locked by another writer") from None
        try:
            self._reload_if_changed()
            self.memory.prune(self._live_ids())
            state = copy.deepcopy(self.state)
            if state["dim"] is None:
                state["dim"] = int(x.shape[1])
            known = set(state["labels"])
            new_classes = [label for label in dict.fromkeys(labels) if label not in known]
            updated = [label for label in dict.fromkeys(labels) if label in known]
            state["labels"] += new_classes
            index = {label: i for i, label in enumerate(state["labels"])}
            y = torch.tensor([index[label] for label in labels])

            old = state["exemplars"]
            mem = self.memory.load(self._live_ids())
            replay = None
            if mem.ids:
                replay = (torch.from_numpy(mem.x), torch.tensor([index[label] for label in mem.labels]))
            strategy = copy.deepcopy(self.strategy)
            strategy.fit(torch.from_numpy(x), y, len(state["labels"]), replay)
            fitted = time.perf_counter()

            task_id = len(state["tasks"]) + 1
            row_of = {i: r for r, i in enumerate(mem.ids)}
            current_x = {label: mem.x[[row_of[i] for i in ids]] for label, ids in old.items() if ids}
            plan = self.budget.plan(old, current_x, x, labels, len(state["labels"]), task_id)
            task_name = task or f"task-{task_id}"
            stamp = time.time()
            new_ids: list[str] = []
            new_rows: list[int] = []
            exemplars: dict[str, list[str]] = {}
            for label, refs in plan.items():
                exemplars[label] = []
                for ref in refs:
                    if isinstance(ref, int):
                        new_rows.append(ref)
                        new_ids.append(uuid.uuid4().hex)
                        ref = new_ids[-1]
                    exemplars[label].append(ref)
            dropped = set(self._live_ids()) - {i for ids in exemplars.values() for i in ids}
            counts: dict[str, int] = {}
            for label in labels:
                counts[label] = counts.get(label, 0) + 1
            record = Task(
                id=task_id,
                name=task_name,
                classes=list(counts),
                new_classes=new_classes,
                counts=counts,
                examples=len(labels),
                time=_now(),
                seconds=round(time.perf_counter() - start, 4),
            )
            state["exemplars"] = exemplars
            state["tasks"].append(record.__dict__)
            state["updated"] = record.time
            planned = time.perf_counter()

            self.memory.add(
                new_ids,
                x[new_rows],
                [texts[r] if texts is not None else None for r in new_rows],
                [{"label": labels[r], "task": task_name, "task_id": task_id, "time": stamp} for r in new_rows],
            )
            try:
                state = self.workspace.commit(state, strategy.tensors())
            except BaseException:
                self.memory.delete(new_ids)
                raise
            self.memory.delete(dropped)
            self.state, self.strategy = state, strategy
        finally:
            lock.release()
        done = time.perf_counter()
        return LearnReport(
            task=record,
            new_classes=new_classes,
            updated_classes=updated,
            examples=len(labels),
            classes_total=len(state["labels"]),
            exemplars_total=sum(len(ids) for ids in exemplars.values()),
            seconds=round(done - start, 4),
            timings={
                "encode": round(encoded - start, 4),
                "fit": round(fitted - encoded, 4),
                "memory": round(planned - fitted, 4),
                "commit": round(done - planned, 4),
            },
        )

    def _live_ids(self) -> list[str]:
        return [i for ids in self.state["exemplars"].values() for i in ids]

    def _reload_if_changed(self) -> None:
        """Pick up a generation another process committed since we loaded ours."""
        on_disk = self.workspace.read_state()
        if on_disk["generation"] != self.state["generation"]:
            self._adopt(on_disk)

    # ----------------------------------------------------------------- predicting
    def predict(self, texts: Sequence[str], k: int = 3, evidence: int = 3) -> list[Prediction]:
        """Best label, its confidence, the top ``k`` labels, and the ``evidence`` nearest stored
        exemplars for each text."""
        texts = validation.texts(texts)
        self._check_predict_args(k, evidence)
        return self._predict(self._encode(texts), k, evidence)

    def predict_vectors(self, vectors: Any, k: int = 3, evidence: int = 3) -> list[Prediction]:
        x = validation.vectors(vectors, self.state["dim"])
        self._check_predict_args(k, evidence)
        return self._predict(x, k, evidence)

    def _check_predict_args(self, k: int, evidence: int) -> None:
        validation.positive_int(k, "k")
        if isinstance(evidence, bool) or not isinstance(evidence, int) or evidence < 0:
            raise InvalidInputError(f"evidence must be a non-negative integer, got {evidence!r}")
        if not self.state["labels"]:
            raise WorkspaceError(f"{self.path} has learned nothing yet; call learn() first")

    def _predict(self, x: np.ndarray, k: int, evidence: int) -> list[Prediction]:
        probs = torch.softmax(self.strategy.logits(torch.from_numpy(x)), dim=-1)
        top_p, top_i = probs.topk(min(k, probs.shape[1]), dim=-1)
        labels = self.state["labels"]
        near = self.memory.nearest(x, evidence)
        out = []
        for p_row, i_row, ev in zip(top_p.tolist(), top_i.tolist(), near):
            top = [(labels[i], float(p)) for p, i in zip(p_row, i_row)]
            out.append(Prediction(label=top[0][0], confidence=top[0][1], top_k=top, evidence=ev))
        return out

    # ----------------------------------------------------------------- encoding
    def _encode(self, texts: list[str]) -> np.ndarray:
        dim = self.state["dim"]
        if dim is not None and self.encoder.dim != dim:
            raise ModelMismatchError(f"encoder gives dimension {self.encoder.dim}; this workspace holds {dim}")
        if self._cache is None:
            self._cache = EmbeddingCache(self.workspace.cache_path(self.encoder.model_id), self.encoder.dim)
        return self.encoder.encode(texts, cache=self._cache)


def _check_same(
    state: dict[str, Any],
    model: str | None,
    strategy: str | None,
    strategy_config: dict[str, Any] | None,
    per_class: int | None,
    total: int | None,
    selection: str | None,
) -> None:
    if model is not None and model != state["model"]:
        raise ModelMismatchError(f"workspace was built with model {state['model']!r}, not {model!r}")
    given = {
        "strategy": (strategy, state["strategy"]["name"]),
        "strategy_config": (strategy_config, state["strategy"]["config"]),
        "memory_per_class": (per_class, state["memory"]["per_class"]),
        "memory_total": (total, state["memory"]["total"]),
        "selection": (selection, state["memory"]["selection"]),
    }
    for what, (asked, stored) in given.items():
        if asked is not None and asked != stored:
            raise InvalidInputError(f"workspace was created with {what}={stored!r}; it cannot change to {asked!r}")
