"""Integrity check of a workspace: the head, the metadata and the memory agree, every snapshot
is whole, and what interrupted operations left behind is cleaned up.

Cleaning is safe at any time: it removes only what no commit names (on a shared server, only
once old enough that no writer can still be about to name it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_il.encoding import adapted
from agent_il.errors import AgentILError
from agent_il.memory.store import RecordStore
from agent_il.state import STORES, WorkspaceState
from agent_il.storage.base import Workspace
from agent_il.storage.history import History, Stores, drop_unnamed_spaces


@dataclass
class Diagnosis:
    location: str
    generation: int
    checked: dict[str, int] = field(default_factory=dict)  # what was looked at, how many
    problems: list[str] = field(default_factory=list)  # what is wrong and was not repaired
    cleaned: dict[str, int] = field(default_factory=dict)  # leftovers removed, by kind
    intact: list[str] = field(default_factory=list)  # snapshots that load whole, newest first
    repaired: list[str] = field(default_factory=list)  # what --repair did

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _trying(found: Diagnosis, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or None with its failure recorded as a problem of ``what``: one
    damaged part never hides the others (Chroma's own errors included, whatever their class)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # doctor reports every failure, it never stops at one
        found.problems.append(f"{what}: {exc if isinstance(exc, AgentILError) else f'{type(exc).__name__}: {exc}'}")
        return None


def diagnose(
    ws: Workspace,
    stores: dict[str, RecordStore],
    history: History,
    check_head: Callable[[WorkspaceState], None],
    *,
    orphan_age: float,
) -> Diagnosis:
    """Check the workspace ``ws`` and clean leftovers older than ``orphan_age`` seconds.
    ``check_head(state)`` reads the state's weights and checks the head against its labels."""
    with ws.writing():
        raw = ws.read_state()
        found = Diagnosis(ws.location, int(raw["generation"]))
        state = WorkspaceState.from_json(raw, ws.location)
        _trying(found, "head", check_head, state)
        _trying(found, "encoder", adapted.check, state.config.model, ws.blobs.get)
        if raw.get("statistics") and raw.get("schema", 1) >= 2:
            _trying(
                found,
                "statistics (derived again from the examples by `doctor --repair`)",
                ws.read_statistics,
                raw,
            )
        found.checked["classes"] = len(state.labels)

        kept = _trying(found, "snapshots", lambda: (history.named(), history.kept()))  # records they name stay
        for store in STORES:
            live = state.live(store)
            found.checked[store] = len(live)
            recs = _trying(found, f"chroma ({store})", stores[store].load, live, from_chroma=True)
            if recs is None:
                continue
            row = dict(zip(recs.ids, recs.labels))
            if store == "exemplars":
                for label, ids in state.exemplars.items():
                    if label not in state.labels:
                        found.problems.append(f"exemplars: label {label!r} is not in the label map")
                    wrong = [i for i in ids if row[i] != label]
                    if wrong:
                        found.problems.append(f"exemplars: {len(wrong)} records listed under {label!r} say otherwise")
            if kept is not None:
                named, keep = kept
                lost = named[store] - set(live) - stores[store].existing(sorted(named[store] - set(live)))
                if lost:
                    found.problems.append(f"{store}: {len(lost)} records that snapshots name are missing")
                found.cleaned[f"orphan {store} records"] = stores[store].prune(
                    keep[store] | set(live), min_age=orphan_age
                )

        tasks = {str(t.id) for t in state.tasks}
        for key in state.holdout:
            if key not in tasks:
                found.problems.append(f"holdout: slice of task {key} that the task list does not have")

        found.intact = intact_snapshots(history, True, found)
        found.cleaned["unnamed encoder spaces"] = len(drop_unnamed_spaces(ws, history, orphan_age))
        removed, in_use = history.tidy(min_age=orphan_age)
        found.cleaned["unfinished snapshot files"] = len(removed)
        found.cleaned["unused weights"] = len(ws.collect_garbage(raw, keep=in_use))
        found.cleaned["temporary files"] = ws.clean_temporary(older_than=orphan_age)
    return found


def intact_snapshots(history: History, readable: bool, found: Diagnosis) -> list[str]:
    """The snapshots that load whole (manifest, weights, and the records they name where the
    stores are ``readable``), newest first; the others are recorded as problems."""
    names = history.names()
    found.checked["snapshots"] = len(names)
    if not readable:  # what they name cannot be checked: none is known to be intact
        return []
    intact = []
    for name in names:
        loaded = _trying(found, f"snapshot {name}", history.load, name)
        if loaded is None:
            continue
        state = WorkspaceState.from_json(loaded[0], f"snapshot {name!r}")
        if _trying(found, f"snapshot {name}", adapted.check, state.config.model, history.blobs.get) is None:
            continue
        stores = history.stores_of(state.space)
        missing = sum(len(set(ids) - stores[s].existing(ids)) for s in STORES if (ids := state.live(s)))
        if missing:
            found.problems.append(f"snapshot {name}: {missing} of the records it names are missing")
            continue
        intact.append(name)
    order = {s.name: (s.created, s.generation) for s in history.list()}
    return sorted(intact, key=lambda n: order.get(n, ("", -1)), reverse=True)


def examine_damaged(
    ws: Workspace,
    error: str,
    make_stores: Stores,
    repair: bool,
    unreadable: bool = False,
) -> Diagnosis:
    """The diagnosis of a workspace that does not open (``error``: why; ``unreadable``: its Chroma
    store opens but its records cannot be read): every part that can be read is checked, every
    one that cannot is listed. With ``repair``, the newest intact
    snapshot becomes the state again (its statistics are derived from the examples at the next
    learn); nothing the damaged parts hold is needed."""
    found = Diagnosis(ws.location, -1)
    with ws.writing():
        raw = _trying(found, "state", ws.read_state)
        if raw is not None:
            found.generation = int(raw["generation"])
            _trying(found, "weights", ws.read_tensors, raw)
        current = WorkspaceState.from_json(raw, ws.location) if raw is not None else None
        readable = _trying(found, "chroma", make_stores, current.space if current else "") is not None
        if unreadable and readable:  # it opens, but what the state names cannot be read
            found.problems.append(f"chroma: {error}")
            readable = False
        history = History(ws.blobs, make_stores, lambda: current)  # type: ignore[arg-type, return-value]
        found.intact = intact_snapshots(history, readable, found)
        if not found.problems:  # the parts read whole: what failed is how they fit together
            found.problems.append(f"open: {error}")
        if not repair:
            return found
        if not readable and ws.journal is not None and ws.journal.entries():
            readable = _rebuild(ws, make_stores, current, history, found)
            if readable:
                found.intact = intact_snapshots(history, readable, found)
                live = {s: set(current.live(s)) for s in STORES} if current is not None else None
                stores = make_stores(current.space) if current is not None else {}
                if live is not None and all(not ids - stores[s].existing(sorted(ids)) for s, ids in live.items()):
                    found.problems = [p for p in found.problems if not p.startswith(("chroma", "open"))]
                    return found  # the state is whole again
        if not readable or not found.intact:
            found.problems.append(
                "repair: no intact state to go back to"
                + (
                    " (the Chroma store holds every record and snapshots name records, they do not copy them: "
                    "restore the directory from a backup, or learn the source files into a new workspace)"
                    if not readable
                    else ""
                )
            )
            return found
        name = found.intact[0]
        saved = WorkspaceState.from_json(history.load(name)[0], f"snapshot {name!r}")
        generations = [int(k.split("/")[1].split("-")[0]) for k in ws.blobs.keys("weights/")]
        generations += [found.generation, saved.generation, _latest(ws)]
        saved.generation = max(generations) + 1
        saved.statistics = saved.statistics_sha256 = None
        saved.statistics_task = None
        ws.replace_state(saved.to_json())
        found.repaired.append(f"restored snapshot {name} as generation {saved.generation}")
    return found


def _latest(ws: Workspace) -> int:
    try:
        return ws.latest_generation()
    except Exception:  # a local workspace reads it from the damaged state
        return -1


def _rebuild(
    ws: Workspace,
    make_stores: Stores,
    current: WorkspaceState | None,
    history: History,
    found: Diagnosis,
) -> bool:
    """A new Chroma store, from the journal: every record that the state or a readable snapshot
    names, in the space it names (the damaged store is kept aside, renamed). False if it cannot
    be made."""
    assert ws.journal is not None
    wanted: dict[tuple[str, str], set[str]] = {}
    states = [current] if current is not None else []
    states += [WorkspaceState.from_json(m["state"], f"snapshot {m['name']!r}") for m in history.manifests()]
    for saved in states:
        for s in STORES:
            wanted.setdefault((saved.space, s), set()).update(saved.live(s))
    aside = _trying(found, "repair", ws.set_aside_store)
    if aside is None or _trying(found, "repair: a new Chroma store", make_stores, "") is None:
        return False
    restored: dict[tuple[str, str], set[str]] = {}
    for key in ws.journal.entries():
        space, entry = _trying(found, "journal", ws.journal.read_entry, key) or ("", {})
        for store, recs in entry.items():
            done = restored.setdefault((space, store), set())
            want = wanted.get((space, store), set())
            rows = [r for r, i in enumerate(recs.ids) if i in want and i not in done]
            if rows:
                make_stores(space)[store].add(recs.take(rows), generation=int(key.split("/")[1].split("-")[0]))
                done.update(recs.ids[r] for r in rows)
    n = sum(len(ids) for ids in restored.values())
    found.repaired.append(f"rebuilt the Chroma store from the journal: {n} records (the damaged one kept as {aside})")
    return True
