"""Predicts beside a learn: what lets one learner answer classify calls while a learn or an edit
runs on another thread. Mixed into :class:`agent_il.learner.IntentLearner`.

A predict reads one committed generation: the state and the head that ``_adopt`` publishes
together in one assignment (``_served``), never a new state with an old head. Writes take turns on
``writing``; predicts take turns on ``reading`` (they share the encoder's embedding cache and the
evidence built per generation); neither lock waits for the other, so a predict never waits for a
learn to finish. ``apredict`` / ``alearn`` run the work on a worker thread under those locks, so an
event loop keeps serving. An async write first waits for its turn on the event loop
(:meth:`write_turn`), not in a worker thread: queued writes then hold no thread of the loop's pool,
and the predicts that need one are never queued behind them."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from agent_il.errors import WorkspaceError
from agent_il.ood.evidence import Exemplars
from agent_il.results import LearnReport, Prediction
from agent_il.state import WorkspaceState
from agent_il.storage.base import Workspace
from agent_il.strategies.heads import Head

T = TypeVar("T")


class Concurrency:
    """The learner's two locks, the generation a predict reads, and the async calls."""

    _served: tuple[WorkspaceState, Head | None]
    _evidence: tuple[tuple[int, str], Exemplars] | None
    workspace: Workspace
    location: str
    strategy: Any
    predict: Callable[..., list[Prediction]]
    learn: Callable[..., LearnReport]

    @property
    def reading(self) -> threading.Lock:
        """Held by each predict of :meth:`apredict` (and of the tool surface): predicts take turns."""
        return self.__dict__.setdefault("_reading", threading.Lock())

    @property
    def writing(self) -> threading.Lock:
        """Held by each learn of :meth:`alearn` (and of the tool surface): writes take turns."""
        return self.__dict__.setdefault("_writing", threading.Lock())

    def write_turn(self) -> asyncio.Lock:
        """The running event loop's turn for this learner's async writes: awaited before a write
        takes a worker thread, so at most one thread per loop waits on :attr:`writing`."""
        turns = self.__dict__.setdefault("_write_turns", weakref.WeakKeyDictionary())
        with self.__dict__.setdefault("_turns_lock", threading.Lock()):
            return turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())

    def _generation(self) -> tuple[WorkspaceState, Head]:
        """The committed state and its head, read together."""
        state, head = self._served
        if head is None:
            raise WorkspaceError(f"{self.location} has learned nothing yet; call learn() first")
        return state, head

    def _exemplars(self, state: WorkspaceState) -> Exemplars:
        """``state``'s exemplar memory in process, built once per generation."""
        key = (state.generation, state.updated)
        evidence = self._evidence
        if evidence is None or evidence[0] != key:
            # Its class statistics are fitted on the rows as Chroma returns them, not taken from the
            # learn (which added rows as encoded): a reopened workspace then predicts bit for bit alike.
            memory = self.workspace.record_stores(state.space)["exemplars"]  # its encoder's records
            evidence = (key, Exemplars(memory.load(state.live("exemplars")), state.labels))
            self._evidence = evidence
        return evidence[1]

    def prepare_to_learn(self) -> None:
        """Import the learning stack (torch, the learn step) now. A server that may learn calls it
        before it serves: a learn's first import of torch must not run beside predicts."""
        from agent_il.engine import step  # noqa: F401 - imported for its side effect: torch loaded

        self.strategy  # noqa: B018 - the head's strategy, made once (it needs torch)

    async def apredict(
        self, texts: Sequence[str], k: int = 3, evidence: int = 3, inbox: bool = True
    ) -> list[Prediction]:
        """:meth:`predict` on a worker thread; it answers from the last committed generation,
        also while a learn runs or writes are queued."""
        return await self.aread(self.predict, list(texts), k=k, evidence=evidence, inbox=inbox)

    async def alearn(
        self, texts: Sequence[str], labels: Sequence[str], task: str | None = None, holdout: float = 0.0
    ) -> LearnReport:
        """:meth:`learn` on a worker thread, after any other write of this learner."""
        return await self.awrite(self.learn, list(texts), list(labels), task=task, holdout=holdout)

    async def aread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` under :attr:`reading` on a worker thread, off the event loop."""
        return await asyncio.to_thread(_locked, self.reading, fn, *args, **kwargs)

    async def awrite(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` under :attr:`writing` on a worker thread, once it is this
        write's turn (:meth:`write_turn`): waiting writes take no thread from the reads."""
        async with self.write_turn():
            return await asyncio.to_thread(_locked, self.writing, fn, *args, **kwargs)


def _locked(lock: threading.Lock, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with lock:
        return fn(*args, **kwargs)
