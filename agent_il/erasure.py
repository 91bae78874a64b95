"""Erasing texts for good: every record that holds one, in the stores, the inbox, the embedding
cache, every snapshot (rewritten without them, their heads derived again, or deleted), the
journal and Chroma's own log and free pages: what ``remove_examples(purge=True)`` does after the
edit itself."""

from __future__ import annotations

from typing import Any

from agent_il.encoding import adapted
from agent_il.encoding.cache import EmbeddingCache
from agent_il.state import STORES, WorkspaceState


def purge(learner: Any, ids: list[str], texts: set[str], drop_snapshots: bool) -> dict[str, int]:
    """Erase ``ids`` and every record with one of ``texts`` from every place the workspace holds them."""
    found: dict[str, int] = {}
    ws = learner.workspace
    with learner._tx.turn():
        spaces = sorted(ws.spaces() | {learner.state.space})  # an encoder migrated from holds them too
        targets = {
            (space, store): set(stores[store].with_texts(texts)) | (set(ids) & stores[store].all_ids())
            for space in spaces
            for store, stores in ((s, ws.record_stores(space)) for s in STORES)
        }
        everything = set().union(*targets.values())
        learned_from = {learner.state.config.model} if everything & set(learner.state.live("examples")) else set()
        for name in learner.snapshots.names():
            saved = WorkspaceState.from_json(learner.snapshots._manifest(name)["state"], f"snapshot {name!r}")
            if not any(everything & set(saved.live(store)) for store in STORES):
                continue
            if everything & set(saved.live("examples")):
                learned_from.add(saved.config.model)
            if drop_snapshots or not learner.strategy.exact_edits or saved.examples is None:
                learner.snapshots.delete(name)
                found["snapshots deleted"] = found.get("snapshots deleted", 0) + 1
                continue
            drop_ids(saved, everything)
            saved.weights = saved.weights_sha256 = None  # their weights learned the erased rows: derived again
            learner.snapshots.rewrite(name, saved.to_json())
            found["snapshots rewritten"] = found.get("snapshots rewritten", 0) + 1
        for (space, store), gone in targets.items():
            ws.record_stores(space)[store].delete(gone)
            found[store] = found.get(store, 0) + len(gone)
        if ws.journal is not None:
            found["journal entries rewritten"] = ws.journal.purge(everything)
        inbox: set[str] = set()
        for space in spaces:
            held = ws.inbox_store(space).with_texts(texts)
            ws.inbox_store(space).delete(held)
            inbox.update(held)
        found["inbox"] = len(inbox)
        found["embedding cache"] = 0
        if learner._cache is not None:  # reopened on the next encode
            learner._cache.close()
            learner._cache = None
        for path in ws.cache_paths():  # every model's: one migrated from keeps its vectors of them
            cache = EmbeddingCache(path)
            try:
                found["embedding cache"] += cache.forget(sorted(texts))
            finally:
                cache.close()
        found.update(ws.vacuum(sorted(everything | inbox)))
        # An adapted encoder was fine-tuned on the examples of its day: `consolidate` again
        # (it starts from the base model) and delete the snapshots that name the old one.
        found["adapted encoders that learned from them"] = sum(map(adapted.is_adapted, learned_from))
    return found


def drop_ids(state: WorkspaceState, ids: set[str]) -> None:
    state.exemplars = {y: [i for i in v if i not in ids] for y, v in state.exemplars.items()}
    state.holdout = {t: [i for i in v if i not in ids] for t, v in state.holdout.items()}
    if state.examples is not None:
        state.examples = {
            t: {y: [i for i in v if i not in ids] for y, v in by.items()} for t, by in state.examples.items()
        }
