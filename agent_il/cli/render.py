"""Human-readable output of the CLI (rich tables on stdout; progress on stderr)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # agent_il.storage loads torch: the types are only named, so the CLI stays fast to import
    from agent_il.engine.metrics import FileEvaluation
    from agent_il.results import ConsolidationReport, LearnReport, MigrationReport, Prediction, Task
    from agent_il.storage.doctor import Diagnosis
    from agent_il.storage.snapshots import SnapshotInfo

# Piped output keeps whole rows (rich would wrap at 80 columns).
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@contextmanager
def progress(enabled: bool, what: str) -> Iterator[Callable[..., None] | None]:
    """A progress bar on stderr when it is a terminal; otherwise nothing. ``advance(done, total,
    what=None)``: ``what`` renames the bar (a new phase of the same work)."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        job = bar.add_task(what, total=None)

        def advance(done: int, total: int, what: str | None = None) -> None:
            bar.update(job, completed=done, total=total, **({"description": what} if what else {}))

        yield advance


def status(info: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    memory = info["memory"]
    budget = f"{memory['per_class']} per class" if memory["per_class"] else f"{memory['total']} in all"
    rows = [
        ("workspace", info["path"]),
        ("model", info["model"]),
        ("backend", info.get("backend", "torch")),
        ("strategy", info["strategy"]),
        ("memory", f"{budget}, {memory['selection']}"),
        ("classes", str(info["classes"])),
        ("tasks", str(info["tasks"])),
        ("exemplars", str(info["exemplars"])),
        ("held-out examples", str(info["holdout_examples"])),
        ("snapshots", str(info["snapshots"])),
        ("size on disk", _size(info["size_bytes"])),
        ("updated", info["updated"]),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    out.print(table)


def learn_report(r: LearnReport) -> None:
    held = f" ({r.holdout_examples} held out)" if r.holdout_examples else ""
    out.print(
        f"Learned task {r.task.id} [bold]{r.task.name}[/] in {r.seconds:.2f} s: "
        f"{_n(len(r.new_classes), 'new class', 'new classes')}, {len(r.updated_classes)} updated, "
        f"{_n(r.examples, 'example')}{held}."
    )
    if r.new_classes:
        out.print(f"  new: {', '.join(r.new_classes)}")
    if r.updated_classes:
        out.print(f"  updated: {', '.join(r.updated_classes)}")
    out.print(f"Workspace: {_n(r.classes_total, 'class', 'classes')}, {_n(r.exemplars_total, 'exemplar')} in memory.")
    forgetting_table(r.holdout_accuracy, "learn")
    if r.snapshot:
        out.print(f"Snapshot of the state before: {r.snapshot} (agent-il rollback undoes this learn).")
    learn_warnings(r)


def _n(count: int, one: str, many: str | None = None) -> str:
    """``1 task``, ``2 tasks``."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


REPEATED_MIN_ROWS = 10  # a class this large with at most half as many distinct texts is warned about


def repetition_warnings(texts: list[str], labels: list[str]) -> None:
    """Classes given mostly the same few texts: repeats weigh more, they teach nothing new."""
    rows: dict[str, int] = {}
    distinct: dict[str, set[str]] = {}
    for t, y in zip(texts, labels):
        rows[y] = rows.get(y, 0) + 1
        distinct.setdefault(y, set()).add(" ".join(t.casefold().split()))
    for y, n in rows.items():
        d = len(distinct[y])
        if n >= REPEATED_MIN_ROWS and d * 2 <= n:
            out.print(
                f"[yellow]warning[/]: {y} has {n} examples but only {_n(d, 'distinct text')}: repeated texts "
                "weigh more, they do not teach the intent new phrasings"
            )


def forgetting_table(rows: list[dict[str, Any]], what: str) -> None:
    """The forgetting check of a learn or an edit: each task's held-out accuracy before -> after."""
    if not rows:
        return
    table = Table(title=f"Held-out accuracy (%), before -> after this {what}", title_justify="left")
    for col in ("task", "before", "after", "change"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for a in rows:
        change = "" if a["before"] is None or a["after"] is None else f"{a['after'] - a['before']:+.1f}"
        table.add_row(f"{a['task']} {a['name']}", _pct(a["before"]), _pct(a["after"]), change)
    out.print(table)


def threshold(c: dict[str, Any] | None) -> None:
    """The calibrated threshold a learn or a migration fitted."""
    if c and c["threshold"] is not None:
        out.print(f"Unknown below in-scope score {c['threshold']:.2f} ({c['score']}, keeps {100 * c['keep']:.0f}%).")


def migration_report(r: MigrationReport) -> None:
    """What a migration did: the encoders, the texts encoded again, the forgetting check."""
    out.print(
        escape(
            f"Moved to {r.model['to']} ({r.backend['to']}, {r.dim['to']} dimensions) from {r.model['from']} "
            f"({r.backend['from']}, {r.dim['from']}) in {r.seconds:.1f} s: {r.examples} examples, "
            f"{r.holdout_examples} held out and {r.inbox} inbox texts encoded again, {r.tasks} learns replayed."
        )
    )
    if r.skipped_tasks:
        out.print(f"  learns with no example left, not replayed: {', '.join(map(str, r.skipped_tasks))}")
    forgetting_table(r.holdout_accuracy, "migration")
    threshold(r.calibration)
    if r.snapshot:
        out.print(f"Snapshot of the state before: {r.snapshot} (agent-il rollback returns to {r.model['from']}).")


def consolidation_report(r: ConsolidationReport) -> None:
    """What a consolidation did: the fine-tune, then the migration to the adapted encoder."""
    t = r.tuning
    out.print(
        escape(
            f"Fine-tuned {r.base} on {t['examples']} examples of {t['classes']} intents: {t['epochs']:.2f} epochs "
            f"({t['steps']} of {t['planned_steps']} planned steps) on {t['device']}, {r.timings['training']:.0f} s."
        )
    )
    migration_report(r.migration)
    out.print(f"Consolidated in {r.seconds:.1f} s; later learns use the adapted encoder.")


def learn_warnings(r: LearnReport) -> None:
    """The calibrated threshold, intents that overlap, and texts given two labels."""
    threshold(r.calibration)
    for e in r.confusions[:10]:
        why = []
        if e["rate"]:
            why.append(f"{100 * e['rate']:.0f}% of its examples scored as {e['other']}")
        if e["reverse_rate"]:
            why.append(f"{100 * e['reverse_rate']:.0f}% of {e['other']}'s taken for it")
        if e["near_duplicates"]:
            d = e["near_duplicates"][0]
            why.append(f"near-duplicate {d['text']!r} ~ {d['other_text']!r} ({d['similarity']:.2f})")
        out.print(f"[yellow]warning[/]: {e['new']} overlaps {e['other']}: {'; '.join(why)}")
    if len(r.confusions) > 10:
        out.print(f"[yellow]warning[/]: {len(r.confusions) - 10} more overlapping pairs (--json lists all)")
    for c in r.conflicts[:10]:
        out.print(f"[yellow]warning[/]: {c['text']!r} is labelled {' and '.join(c['labels'])} ({c['where']})")
    if len(r.conflicts) > 10:
        out.print(f"[yellow]warning[/]: {len(r.conflicts) - 10} more conflicting texts (--json lists all)")


def calibration(c: dict[str, Any]) -> None:
    threshold = "none (nothing is rejected)" if c["threshold"] is None else f"{c['threshold']:.3f}"
    out.print(f"in-scope score: {c['score']}; threshold {threshold}; keeps {100 * c['keep']:.1f}% of in-scope inputs")
    out.print(f"calibrated on {c['source']} ({c['mode']})")
    if "fitted_on" in c:
        f = c["fitted_on"]
        out.print(f"fitted on {f['out_of_scope']} out-of-scope and {f['in_scope']} in-scope labelled examples")


def confusion_table(pairs: list[dict[str, Any]]) -> None:
    if not pairs:
        out.print("no confused pairs among the stored examples")
        return
    table = Table()
    for col in ("intent", "taken for", "rate", "of", "prototype cos", "example"):
        table.add_column(col, justify="right" if col in ("rate", "of", "prototype cos") else "left")
    for p in pairs:
        cos = "-" if p["prototype_similarity"] is None else f"{p['prototype_similarity']:.2f}"
        example = p["examples"][0] if p["examples"] and p["examples"][0] is not None else ""
        table.add_row(p["label"], p["confused_with"], f"{100 * p['rate']:.0f}%", str(p["rows"]), cos, example)
    out.print(table)


def inbox_table(items: list[dict[str, Any]], total: int) -> None:
    if not items:
        out.print("the inbox is empty: predict puts inputs it rejects as unknown there")
        return
    table = Table(title=f"{_n(total, 'item')} in the inbox", title_justify="left")
    for col in ("text", "closest intent", "score"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for i in items:
        score = "-" if i["score"] is None else f"{i['score']:.2f}"
        table.add_row(i["text"] or "(vector)", i["closest"], score)
    out.print(table)


def cluster_table(clusters: list[Any]) -> None:
    if not clusters:
        out.print("no candidate intents: the inbox holds no group of similar inputs yet")
        return
    for c in clusters:
        out.print(
            f"[bold]{c.key}[/]  {_n(c.size, 'item')}, cohesion {c.cohesion:.2f}, "
            f"closest known intent {c.closest_intent}"
        )
        for text in c.examples:
            out.print(f"    - {text if text is not None else '(vector)'}")
    out.print("Learn one: agent-il inbox learn KEY --as NEW_INTENT")


def prediction_dict(text: str, p: Prediction) -> dict[str, Any]:
    return {
        "text": text,
        "label": p.label,
        "confidence": p.confidence,
        "top_k": [{"label": label, "confidence": c} for label, c in p.top_k],
        "evidence": [e.__dict__ for e in p.evidence],
        "known": p.known,
        "score": p.score,
    }


def predictions(texts: list[str], preds: list[Prediction]) -> None:
    for text, p in zip(texts, preds):
        others = ", ".join(f"{label} {c:.2f}" for label, c in p.top_k[1:])
        if not p.known:
            closest = ", ".join(f"{label} {c:.2f}" for label, c in p.top_k)
            score = "" if p.score is None else f" (in-scope score {p.score:.2f})"
            out.print(f"[bold yellow]{p.label}[/]{score}  {text!r}   (closest: {closest})")
        else:
            out.print(f"[bold]{p.label}[/] {p.confidence:.2f}  {text!r}" + (f"   (then: {others})" if others else ""))
        for e in p.evidence:
            shown = e.text if e.text is not None else "(vector)"
            out.print(f"    ~ {e.similarity:.2f} {e.label}: {shown}")


def matrix(summary: dict[str, Any], names: dict[int, str], plot: Path | None) -> None:
    table = Table(title="Held-out accuracy (%): rows after learning, columns evaluated on", title_justify="left")
    table.add_column("after \\ task")
    for t in summary["tasks"]:
        table.add_column(f"{t} {names.get(t, '')}", justify="right")
    for row, values in zip(summary["rows"], summary["matrix"]):
        after = row["after_task"]
        table.add_row(f"{after} {names.get(after, '')}", *[_pct(v) for v in values])
    out.print(table)
    out.print(f"final average accuracy: {_pct(summary['final_accuracy'])}")
    out.print(f"average incremental accuracy: {_pct(summary['average_incremental_accuracy'])}")
    out.print(f"average forgetting: {_pct(summary['forgetting'])}")
    out.print(f"backward transfer: {_pct(summary['backward_transfer'])}")
    if plot is not None:
        out.print(f"plot written to {plot}")


def file_evaluation(r: FileEvaluation) -> None:
    out.print(f"accuracy: {r.accuracy:.1f}% on {_n(r.examples, 'example')}")
    table = Table(title="per task", title_justify="left")
    for col in ("task", "examples", "accuracy"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for tid, t in r.per_task.items():
        table.add_row(f"{tid} {t['name']}", str(t["examples"]), _pct(t["accuracy"]))
    out.print(table)
    worst = sorted(r.per_class.items(), key=lambda kv: kv[1]["accuracy"])[:10]
    table = Table(title="lowest classes", title_justify="left")
    for col in ("class", "examples", "accuracy"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for label, c in worst:
        table.add_row(label, str(c["examples"]), _pct(c["accuracy"]))
    out.print(table)
    if r.unknown_labels:
        out.print(f"labels never learned (counted wrong): {', '.join(r.unknown_labels)}")


def task_table(tasks: list[Task]) -> None:
    if not tasks:
        out.print("no tasks yet: agent-il learn FILE")
        return
    table = Table()
    for col in ("id", "name", "classes", "new", "examples", "learned (UTC)", "seconds"):
        table.add_column(col, justify="right" if col in ("id", "classes", "new", "examples", "seconds") else "left")
    for t in tasks:
        table.add_row(
            str(t.id), t.name, str(len(t.classes)), str(len(t.new_classes)), str(t.examples), t.time, f"{t.seconds:.2f}"
        )
    out.print(table)


def task_detail(d: dict[str, Any]) -> None:
    out.print(
        f"Task {d['id']} [bold]{d['name']}[/], learned {d['time']} in {d['seconds']:.2f} s, "
        f"{_n(d['examples'], 'example')}"
    )
    table = Table()
    for col in ("class", "new here", "examples", "exemplars now"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for label in d["classes"]:
        table.add_row(
            label, "yes" if label in d["new_classes"] else "", str(d["counts"][label]), str(d["exemplars"][label])
        )
    out.print(table)
    if d["holdout_accuracy"]:
        curve = ", ".join(f"after {a['after_task']}: {a['accuracy']:.1f}" for a in d["holdout_accuracy"])
        out.print(f"held-out accuracy: {curve}")


def snapshot_table(snaps: list[SnapshotInfo]) -> None:
    if not snaps:
        out.print("no snapshots yet: agent-il snapshot create NAME")
        return
    table = Table()
    for col in ("name", "created (UTC)", "classes", "tasks", "exemplars", "size"):
        table.add_column(col, justify="left" if col in ("name", "created (UTC)") else "right")
    for s in snaps:
        table.add_row(
            s.name,
            s.created.replace("T", " ").removesuffix("+00:00"),
            str(s.classes),
            str(s.tasks),
            str(s.exemplars),
            _size(s.bytes),
        )
    out.print(table)


def bench_table(result: dict[str, Any], out_dir: Path) -> None:
    from agent_il.bench.reports import HEADER, table_rows

    p = result["protocol"]
    table = Table(
        title=f"{_n(p['classes'], 'class', 'classes')}, {_n(p['tasks'], 'task')}, seeds {p['seeds']}: mean ± std",
        title_justify="left",
    )
    for i, col in enumerate(HEADER):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in table_rows(result["strategies"]):
        table.add_row(*row)
    out.print(table)
    out.print(f"default: {result['default']}; best final accuracy: {result['best']}")
    if result.get("oos"):
        from agent_il.bench.reports import OOS_HEADER, oos_rows

        oos = Table(title="Out-of-scope rejection of the default (95% keep target)", title_justify="left")
        for i, col in enumerate(OOS_HEADER):
            oos.add_column(col, justify="left" if i < 2 else "right")
        for row in oos_rows(result["oos"]):
            oos.add_row(*row)
        out.print(oos)
    out.print(f"results.json, report.md and plots in {out_dir}")


def diagnosis(d: Diagnosis) -> None:
    checked = ", ".join(f"{n} {what}" for what, n in d.checked.items())
    out.print(f"{d.location} (generation {d.generation}): checked {checked}")
    for what, n in d.cleaned.items():
        if n:
            out.print(f"cleaned {n} {what}")
    for done in d.repaired:
        out.print(f"[green]repaired[/green]: {done}")
    for problem in d.problems:
        out.print(f"[red]problem[/red]: {escape(problem)}")
    if d.checked.get("snapshots"):
        out.print(f"intact snapshots: {', '.join(d.intact) or 'none'}")
    lost = any(p.startswith(("open", "state", "head", "weights")) for p in d.problems)
    if lost and d.intact and not d.repaired:
        out.print(f"agent-il doctor --repair: back to the newest intact snapshot ({d.intact[0]})")
    out.print("[green]ok[/green]" if d.ok else f"[red]{len(d.problems)} problem(s)[/red]")
