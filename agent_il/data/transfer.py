"""Moving a knowledge base in and out: learning an imported dataset (its fallback rows fitted into
the rejection threshold), exporting every stored example, and replaying a JSONL export task by
task into another workspace so that it predicts the same.

The functions take the learner (:class:`agent_il.learner.IntentLearner`, which this layer may not
import) as an argument: the facade stays thin and this logic stays testable on its own."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from agent_il import validation
from agent_il.data import writers
from agent_il.data.base import DataError, Dataset, check_label, check_text, read_text
from agent_il.errors import InvalidInputError
from agent_il.results import UNKNOWN, Example, LearnReport


class Learner(Protocol):
    """What these functions use of :class:`agent_il.learner.IntentLearner`."""

    stores: dict[str, Any]

    @property
    def labels(self) -> list[str]: ...

    @property
    def config(self) -> Any: ...

    def examples(self, intent: str | None = None, task: str | None = None) -> list[Example]: ...

    def learn(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        task: str | None = None,
        holdout: float = 0.0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> LearnReport: ...

    def calibrate(self, *, texts: Sequence[str], labels: Sequence[str], oos_label: str) -> dict[str, Any]: ...


# ----------------------------------------------------------------------------- learning an import
def learn_dataset(
    learner: Learner,
    dataset: Dataset,
    task: str | None = None,
    holdout: float = 0.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[LearnReport, dict[str, Any] | None]:
    """Learn ``dataset`` as one task, then, if it has out-of-scope rows (fallback intents), fit the
    rejection threshold on them. The in-scope side of that fit is the workspace's held-out
    examples, which the head has not fitted (its own training rows would score too high); with
    none, the calibration's own left-out scores stand in. Returns the learn's report and
    what the fit did (None without fallback rows)."""
    assert dataset.labels is not None
    report = learner.learn(dataset.texts, dataset.labels, task=task, holdout=holdout, on_progress=on_progress)
    if not dataset.fallback:
        return report, None
    held = [e for e in learner.examples() if e.held_out and e.text is not None]
    texts = [e.text for e in held if e.text is not None] + dataset.fallback
    labels = [e.label for e in held] + [UNKNOWN] * len(dataset.fallback)
    calibration = learner.calibrate(texts=texts, labels=labels, oos_label=UNKNOWN)
    return report, {"fallback_rows": len(dataset.fallback), "in_scope_rows": len(held), "calibration": calibration}


# ----------------------------------------------------------------------------- export
def export_rows(learner: Learner, intents: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every stored example (learned and held out) of ``intents`` (default: all) as a dict of
    :data:`writers.FIELDS`, in the order they were learned: by task, then by row of that learn."""
    if intents:
        found: dict[str, Example] = {}
        for intent in intents:
            found.update((e.id, e) for e in learner.examples(intent=intent))
        examples = list(found.values())
    else:
        examples = learner.examples()
    rows: dict[str, Any] = {}
    for store, held in (("examples", False), ("holdout", True)):
        recs = learner.stores[store].load([e.id for e in examples if e.held_out == held])
        rows.update((i, m.get("row")) for i, m in zip(recs.ids, recs.metadatas))
    out = [{**e.to_dict(), "row": rows.get(e.id)} for e in examples]
    return sorted(out, key=lambda r: (r["task_id"], r["row"] if r["row"] is not None else -1))


def export_examples(
    learner: Learner,
    path: str | Path,
    fmt: str | None = None,
    intents: Sequence[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write the stored examples to ``path`` (format from ``fmt`` or the extension: jsonl, csv,
    rasa, semantic-router), atomically; an existing file is refused unless ``force``. Examples
    kept without text (learned as vectors) are left out of every format but JSONL."""
    from agent_il.storage.atomic import write_bytes

    path = Path(path)
    fmt = writers.export_format(path, fmt)
    if path.is_dir():
        raise InvalidInputError(f"{path}: is a directory; give a file name to export to")
    if path.exists() and not force:
        raise InvalidInputError(f"{path}: exists; pass --force (force=True) to overwrite it")
    if not path.parent.is_dir():
        raise InvalidInputError(f"{path.parent}: no such directory")
    rows = export_rows(learner, intents)
    if not rows:
        raise InvalidInputError("nothing to export: the workspace holds no examples yet")
    kept = rows if fmt == "jsonl" else [r for r in rows if r["text"] is not None]
    write_bytes(path, writers.render(fmt, kept, learner.config.model))
    return {
        "path": str(path),
        "format": fmt,
        "examples": len(kept),
        "held_out": sum(r["held_out"] for r in kept),
        "intents": len({r["label"] for r in kept}),
        "tasks": len({r["task_id"] for r in kept}),
        "without_text": len(rows) - len(kept),
    }


# ----------------------------------------------------------------------------- import (replay)
def holdout_fraction(counts: dict[str, tuple[int, int]]) -> float | None:
    """A ``holdout`` for which the learn's stratified split (agent_il.engine.step.split_holdout:
    ``min(n - 1, max(1, round(f * n)))`` of a class of ``n >= 2``) holds out exactly ``k`` of each
    class, given ``counts`` label -> (n, k); None if no single fraction does (an edited slice)."""
    if all(k == 0 for _, k in counts.values()):
        return 0.0
    if any(n < 2 and k for n, k in counts.values()):
        return None

    def held(f: float, n: int) -> int:
        return 0 if n < 2 else min(n - 1, max(1, round(f * n)))

    lo = max((k - 0.5) / n for n, k in counts.values() if n >= 2)
    hi = min((k + 0.5) / n for n, k in counts.values() if n >= 2)
    candidates = [(lo + hi) / 2, *(k / n for n, k in counts.values() if n), validation.MAX_HOLDOUT]
    candidates += [i / 100 for i in range(1, 51)]
    for f in candidates:
        if 0 < f <= validation.MAX_HOLDOUT and all(held(f, n) == k for n, k in counts.values()):
            return f
    return None


def read_export(path: str | Path) -> list[dict[str, Any]]:
    """The examples of a JSONL export, each checked (naming its line) before anything is learned."""
    path = Path(path)
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {n}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON: {exc.msg}") from None
        if not isinstance(item, dict) or not {"label", "task", "task_id", "held_out"} <= set(item):
            raise DataError(
                f"{where}: not an agent-il export line (needs text, label, task, task_id, held_out); "
                "make one with `agent-il export FILE.jsonl`, or learn a plain file with `agent-il learn`"
            )
        if item.get("text") is None:
            raise DataError(f"{where}: this example was learned as a vector, without text; it cannot be replayed")
        task_id, row = item["task_id"], item.get("row")
        if not isinstance(task_id, int) or isinstance(task_id, bool) or not (row is None or isinstance(row, int)):
            raise DataError(f"{where}: task_id and row must be integers")
        if not isinstance(item["held_out"], bool) or not isinstance(item["task"], str):
            raise DataError(f"{where}: held_out must be true or false, task a name")
        text = check_text(item["text"], where, validation.max_text_chars())
        label = check_label(item["label"], where)
        if label.casefold() == UNKNOWN:
            raise DataError(f"{where}: the label {UNKNOWN!r} cannot be learned")
        rows.append({**item, "text": text, "label": label, "line": n})
    if not rows:
        raise DataError(f"{path}: holds no examples")
    return rows


def plan_replay(rows: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """One learn per task of the export, oldest first: its name, rows in their original order,
    and the ``holdout`` fraction that draws the same held-out slice."""
    by_task: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task_id"], []).append(r)
    plan = []
    for task_id in sorted(by_task):
        mine = by_task[task_id]
        names = {r["task"] for r in mine}
        if len(names) > 1:
            raise DataError(f"{source} line {mine[0]['line']}: task {task_id} has several names: {sorted(names)}")
        if all(r.get("row") is not None for r in mine):
            mine = sorted(mine, key=lambda r: r["row"])
        counts: dict[str, tuple[int, int]] = {}
        for y, n in Counter(r["label"] for r in mine).items():
            counts[y] = (n, sum(r["held_out"] for r in mine if r["label"] == y))
        fraction = holdout_fraction(counts)
        exact = fraction is not None
        if fraction is None:  # the slice was edited since: hold out as many, drawn again
            fraction = min(validation.MAX_HOLDOUT, sum(k for _, k in counts.values()) / len(mine))
        plan.append({"task_id": task_id, "task": names.pop(), "rows": mine, "holdout": fraction, "exact": exact})
    return plan


def replay_export(
    learner: Learner, path: str | Path, on_progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Learn a JSONL export into ``learner``: its tasks in their original order, under their
    names, each with its own rows in their order and a holdout that draws the same held-out
    slice. Into a fresh workspace with the same settings and model this gives the same head,
    hence the same predictions. Everything is checked before the first learn."""
    plan = plan_replay(read_export(path), str(path))
    reports = []
    for step in plan:
        texts, labels = [r["text"] for r in step["rows"]], [r["label"] for r in step["rows"]]
        report = learner.learn(texts, labels, task=step["task"], holdout=step["holdout"], on_progress=on_progress)
        reports.append(report)
    new_ids = {str(rep.task.id): step for rep, step in zip(reports, plan)}
    held_now: dict[str, Counter[tuple[str, str]]] = {k: Counter() for k in new_ids}
    for e in learner.examples():
        if e.held_out and str(e.task_id) in held_now:
            held_now[str(e.task_id)][(e.label, e.text or "")] += 1
    tasks = []
    for key, step in new_ids.items():
        wanted = Counter((r["label"], r["text"]) for r in step["rows"] if r["held_out"])
        tasks.append(
            {
                "task": step["task"],
                "from_task_id": step["task_id"],
                "task_id": int(key),
                "examples": len(step["rows"]),
                "held_out": sum(wanted.values()),
                "holdout": round(step["holdout"], 6),
                "held_out_reproduced": held_now[key] == wanted,
            }
        )
    return {
        "path": str(path),
        "tasks": tasks,
        "examples": sum(t["examples"] for t in tasks),
        "held_out_reproduced": all(t["held_out_reproduced"] for t in tasks),
        "reports": reports,
    }
