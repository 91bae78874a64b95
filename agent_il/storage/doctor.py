"""Integrity check of a workspace: the head, the metadata and the memory agree, every snapshot
is whole, and what interrupted operations left behind is cleaned up.

Cleaning is safe at any time: it removes only what no commit names (on a shared server, only
once old enough that no writer can still be about to name it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_il.errors import AgentILError
from agent_il.memory.store import RecordStore
from agent_il.state import STORES, WorkspaceState
from agent_il.storage.base import Workspace
from agent_il.storage.history import History


@dataclass
class Diagnosis:
    location: str
    generation: int
    checked: dict[str, int] = field(default_factory=dict)  # what was looked at, how many
    problems: list[str] = field(default_factory=list)  # what is wrong and was not repaired
    cleaned: dict[str, int] = field(default_factory=dict)  # leftovers removed, by kind

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


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
        try:
            check_head(state)
        except AgentILError as exc:
            found.problems.append(f"head: {exc}")
        found.checked["classes"] = len(state.labels)

        named, kept = history.named(), history.kept()  # records a snapshot names stay
        for store in STORES:
            live = state.live(store)
            found.checked[store] = len(live)
            try:
                recs = stores[store].load(live, from_chroma=True)
            except AgentILError as exc:
                found.problems.append(f"{store}: {exc}")
                continue
            row = dict(zip(recs.ids, recs.labels))
            if store == "exemplars":
                for label, ids in state.exemplars.items():
                    if label not in state.labels:
                        found.problems.append(f"exemplars: label {label!r} is not in the label map")
                    wrong = [i for i in ids if row[i] != label]
                    if wrong:
                        found.problems.append(f"exemplars: {len(wrong)} records listed under {label!r} say otherwise")
            lost = named[store] - set(live) - stores[store].existing(sorted(named[store] - set(live)))
            if lost:
                found.problems.append(f"{store}: {len(lost)} records that snapshots name are missing")
            found.cleaned[f"orphan {store} records"] = stores[store].prune(kept[store] | set(live), min_age=orphan_age)

        tasks = {str(t.id) for t in state.tasks}
        for key in state.holdout:
            if key not in tasks:
                found.problems.append(f"holdout: slice of task {key} that the task list does not have")

        names = history.names()
        found.checked["snapshots"] = len(names)
        for name in names:
            try:
                history.load(name)
            except AgentILError as exc:
                found.problems.append(f"snapshot {name}: {exc}")
        removed, in_use = history.tidy(min_age=orphan_age)
        found.cleaned["unfinished snapshot files"] = len(removed)
        found.cleaned["unused weights"] = len(ws.collect_garbage(raw, keep=in_use))
        found.cleaned["temporary files"] = ws.clean_temporary(older_than=orphan_age)
    return found
