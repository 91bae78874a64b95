"""Moving the knowledge base to another encoder: every stored text (examples, held-out slices,
the inbox and the corrections waiting for review) encoded again with another
sentence-transformers model, and every learn learned again on the new vectors, as one
transaction. Mixed into :class:`agent_il.learner.IntentLearner`.

A Chroma collection holds vectors of one dimension, so the new vectors go to collections of
their own, a new *space* the state names; the old space stays as long as a snapshot names it,
so ``rollback`` returns to the old encoder, head and records at once."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from agent_il import opening
from agent_il.config import WorkspaceConfig
from agent_il.encoding.base import check_backend
from agent_il.encoding.cache import EmbeddingCache
from agent_il.encoding.encoder import Encoder, normalise_model_id, resolve
from agent_il.errors import InvalidInputError
from agent_il.inbox.inbox import Inbox
from agent_il.memory.records import Records
from agent_il.memory.store import RecordStore
from agent_il.results import MigrationReport
from agent_il.state import WorkspaceState
from agent_il.storage.base import Workspace, new_space
from agent_il.storage.snapshots import SnapshotInfo
from agent_il.storage.transaction import Transactions


class Migration:
    """``migrate`` and the encoder switch every adopted state makes. The learner provides the
    attributes below."""

    state: WorkspaceState
    workspace: Workspace
    encoder: Encoder
    stores: dict[str, RecordStore]
    inbox: Inbox
    location: str
    _tx: Transactions
    _encoders: dict[tuple[str, str | None], Encoder]
    _cache: EmbeddingCache | None
    _commit: Callable[..., SnapshotInfo | None]
    refresh: Callable[[], bool]

    def _use_encoder(self, state: WorkspaceState) -> None:
        """Encode with ``state``'s model and backend (a migration, a rollback of one, a restore)."""
        encoder = opening.encoder_of(state.config, self._encoders, self.encoder.device, self.workspace)
        if encoder is not self.encoder and self._cache is not None:  # another model: its own cache
            self._cache.close()
            self._cache = None
        self.encoder = encoder

    def migrate(
        self,
        model: str | os.PathLike[str],
        *,
        backend: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> MigrationReport:
        """Encode every stored text with ``model`` (any sentence-transformers name or local
        directory; ``backend`` as for :meth:`open`, default its own choice for that model) and
        learn every learn again on the new vectors, in order: the workspace becomes what learning
        the same learns with that model would have made. One transaction: the old encoder, head
        and records stay until it commits, and ``rollback`` returns to them.
        ``on_progress(done, total)`` follows the encoding, the slow part."""
        self.refresh()
        old = self.state
        if old.examples is None:
            raise InvalidInputError(
                f"{self.location} was made before agent-il kept every example, so there is nothing to encode "
                "again; relearn its data into a new workspace"
            )
        if not old.labels:
            raise InvalidInputError("nothing to migrate: the workspace has learned nothing yet")
        if not isinstance(model, str | os.PathLike) or not str(model).strip():
            raise InvalidInputError("model: give a sentence-transformers model name or directory")
        model_id = normalise_model_id(model)
        chosen = check_backend(backend or "auto")
        if chosen == "auto":
            chosen = resolve("auto", model_id, self.encoder.device)
        if (model_id, chosen) == (old.config.model, old.config.backend):
            raise InvalidInputError(f"model: the workspace already encodes with {model_id} ({chosen})")
        return self._move(replace(old.config, model=model_id, backend=chosen), new_space(), on_progress)

    def _move(
        self,
        config: WorkspaceConfig,
        space: str,
        on_progress: Callable[[int, int], None] | None,
        tuned_through: int | None = None,
    ) -> MigrationReport:
        """Encode every stored text with ``config``'s encoder and learn every learn again into
        ``space``: one transaction, after which ``space`` is dropped if it did not commit.
        ``tuned_through``: the newest task whose examples that encoder was fine-tuned on."""
        try:
            encoder = opening.encoder_of(config, self._encoders, self.encoder.device, self.workspace)
            dim = encoder.dim  # loads it: a model that does not load fails here, with nothing changed
            start = time.perf_counter()
            for attempt in self._tx.attempts():
                with attempt:
                    old, done, inbox, snap, (encoded, replayed) = self._move_once(
                        encoder, config, space, on_progress, tuned_through
                    )
        except BaseException:
            self.workspace.drop_space(space)  # named by no state: nothing to keep
            raise
        finished = time.perf_counter()
        names = {t.id: t.name for t in old.tasks}
        before = old.evaluation[-1]["accuracy"] if old.evaluation else {}
        after = self.state.evaluation[-1]["accuracy"] if self.state.evaluation else {}
        return MigrationReport(
            model={"from": old.config.model, "to": config.model},
            backend={"from": old.config.backend, "to": config.backend},
            dim={"from": old.dim, "to": dim},
            examples=len(done.train.ids),
            holdout_examples=len(done.test.ids),
            inbox=len(inbox.ids),
            classes_total=len(self.state.labels),
            tasks=len(self.state.tasks),
            skipped_tasks=done.skipped,
            seconds=round(finished - start, 4),
            timings={
                "encode": round(encoded - start, 4),
                "replay": round(replayed - encoded, 4),
                "commit": round(finished - replayed, 4),
            },
            holdout_accuracy=[
                {"task": int(t), "name": names.get(int(t), t), "before": before.get(t), "after": a}
                for t, a in after.items()
            ],
            calibration=done.checks.get("calibration"),
            snapshot=snap.name if snap else None,
        )

    def _move_once(
        self,
        encoder: Encoder,
        config: WorkspaceConfig,
        space: str,
        on_progress: Callable[[int, int], None] | None,
        tuned_through: int | None,
    ) -> tuple[WorkspaceState, Any, Records, SnapshotInfo | None, tuple[float, float]]:
        """One attempt of :meth:`_move` on the state as it is now."""
        from agent_il.engine import replay

        old = self.state
        found = {s: self.stores[s].load(old.live(s)) for s in ("examples", "holdout")}
        waiting = self.inbox.store.load(sorted(self.inbox.store.all_ids()))
        textless = sum(t is None for recs in found.values() for t in recs.texts)
        if textless:
            raise InvalidInputError(
                f"{textless} examples were learned as vectors, without their text: another model "
                "cannot encode them (remove them first: `agent-il examples list`)"
            )
        waiting = waiting.take([r for r, t in enumerate(waiting.texts) if t is not None])
        texts = [t for recs in (*found.values(), waiting) for t in recs.texts]
        cache = EmbeddingCache(self.workspace.cache_path(encoder.cache_id), encoder.dim)
        try:
            x = encoder.encode(texts, cache=cache, on_progress=on_progress)
        finally:
            cache.close()
        encoded = time.perf_counter()
        parts = _split(x, [len(found["examples"].ids), len(found["holdout"].ids)])
        examples, held, inbox = (_with(r, v) for r, v in zip((*found.values(), waiting), parts))
        done = replay.replay(old, config, space, examples, held, tuned_through)
        replayed = time.perf_counter()
        try:
            self.workspace.inbox_store(space).add(inbox)
            added = {"examples": done.train, "holdout": done.test}
            snap = self._commit(done.state, done.strategy, added, snapshot=True, statistics="write")
        except BaseException:
            self.workspace.drop_space(space, encoders=False)  # the next attempt adds anew
            raise
        return old, done, inbox, snap, (encoded, replayed)


def _split(x: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(x, np.cumsum(sizes))


def _with(recs: Records, x: np.ndarray) -> Records:
    """``recs`` with the vectors ``x`` (the same ids, texts and metadata)."""
    return Records(recs.ids, np.ascontiguousarray(x, dtype=np.float32), list(recs.texts), list(recs.metadatas))
