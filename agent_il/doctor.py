"""Integrity check of a workspace: the head, the metadata and the memory agree, every snapshot
is whole, and what interrupted operations left behind is cleaned up.

Cleaning is safe at any time: it removes only what no commit names (on a shared server, only
once old enough that no writer can still be about to name it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from agent_il.errors import AgentILError

if TYPE_CHECKING:
    from agent_il.learner import IntentLearner


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


def diagnose(learner: IntentLearner, *, orphan_age: float) -> Diagnosis:
    """Check ``learner``'s workspace and clean leftovers older than ``orphan_age`` seconds."""
    from agent_il.learner import STORES, _live

    ws = learner.workspace
    with ws.writing():
        state = ws.read_state()
        found = Diagnosis(ws.location, int(state["generation"]))
        try:
            learner._adopt(state)  # reads the weights and checks the head against the label map
        except AgentILError as exc:
            found.problems.append(f"head: {exc}")
        found.checked["classes"] = len(state["labels"])

        for store in STORES:
            live = _live(state, store)
            found.checked[store] = len(live)
            try:
                recs = learner.stores[store].load(live, from_chroma=True)
            except AgentILError as exc:
                found.problems.append(f"{store}: {exc}")
                continue
            row = dict(zip(recs.ids, recs.labels))
            if store == "exemplars":
                for label, ids in state["exemplars"].items():
                    if label not in state["labels"]:
                        found.problems.append(f"exemplars: label {label!r} is not in the label map")
                    wrong = [i for i in ids if row[i] != label]
                    if wrong:
                        found.problems.append(f"exemplars: {len(wrong)} records listed under {label!r} say otherwise")
            found.cleaned[f"orphan {store} records"] = learner.stores[store].prune(live, min_age=orphan_age)

        tasks = {str(t["id"]) for t in state["tasks"]}
        for key in state["holdout"]:
            if key not in tasks:
                found.problems.append(f"holdout: slice of task {key} that the task list does not have")

        names = learner.snapshots.names()
        found.checked["snapshots"] = len(names)
        for name in names:
            try:
                learner.snapshots.load(name)
            except AgentILError as exc:
                found.problems.append(f"snapshot {name}: {exc}")
        removed, in_use = learner.snapshots.tidy(min_age=orphan_age)
        found.cleaned["unfinished snapshot files"] = len(removed)
        found.cleaned["unused weights"] = len(ws.collect_garbage(state, keep=in_use))
        found.cleaned["temporary files"] = ws.clean_temporary(older_than=orphan_age)
    return found
