"""Erasing texts for good: every record that holds one, in the stores, the inbox, the embedding
cache, every snapshot (rewritten without them, their heads derived again, or deleted), the
journal and Chroma's own log and free pages: what ``remove_examples(purge=True)`` does after the
edit itself."""

from __future__ import annotations

from typing import Any

from agent_il.encoding.cache import EmbeddingCache
from agent_il.state import STORES, WorkspaceState


def purge(learner: Any, ids: list[str], texts: set[str], drop_snapshots: bool) -> dict[str, int]:
    """Erase ``ids`` and every record with one of ``texts`` from every place the workspace holds them."""
    found: dict[str, int] = {}
    with learner._tx.turn():
        targets = {
            store: set(learner.stores[store].with_texts(texts)) | (set(ids) & learner.stores[store].all_ids())
            for store in STORES
        }
        everything = set().union(*targets.values())
        for name in learner.snapshots.names():
            saved = WorkspaceState.from_json(learner.snapshots._manifest(name)["state"], f"snapshot {name!r}")
            if not any(everything & set(saved.live(store)) for store in STORES):
                continue
            if drop_snapshots or not learner.strategy.exact_edits or saved.examples is None:
                learner.snapshots.delete(name)
                found["snapshots deleted"] = found.get("snapshots deleted", 0) + 1
                continue
            drop_ids(saved, everything)
            saved.weights = saved.weights_sha256 = None  # their weights learned the erased rows: derived again
            learner.snapshots.rewrite(name, saved.to_json())
            found["snapshots rewritten"] = found.get("snapshots rewritten", 0) + 1
        for store in STORES:
            learner.stores[store].delete(targets[store])
            found[store] = len(targets[store])
        if learner.workspace.journal is not None:
            found["journal entries rewritten"] = learner.workspace.journal.purge(everything)
        inbox = learner.inbox.store.with_texts(texts)
        learner.inbox.store.delete(inbox)
        found["inbox"] = len(inbox)
        path = learner.workspace.cache_path(learner.encoder.cache_id)
        if path is not None and path.exists():
            if learner._cache is None:
                learner._cache = EmbeddingCache(path, learner.encoder.dim)
            found["embedding cache"] = learner._cache.forget(sorted(texts))
        found.update(learner.workspace.vacuum(sorted(everything | set(inbox))))
    return found


def drop_ids(state: WorkspaceState, ids: set[str]) -> None:
    state.exemplars = {y: [i for i in v if i not in ids] for y, v in state.exemplars.items()}
    state.holdout = {t: [i for i in v if i not in ids] for t, v in state.holdout.items()}
    if state.examples is not None:
        state.examples = {
            t: {y: [i for i in v if i not in ids] for y, v in by.items()} for t, by in state.examples.items()
        }
