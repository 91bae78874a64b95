"""Human-readable output of the knowledge-base commands (``intents``, ``examples``): tables of
what the workspace holds, the plan an edit shows before it asks, and the summary after it."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from agent_il.cli.render import _n, _pct, forgetting_table, out

if TYPE_CHECKING:
    from agent_il.results import EditReport, Example, IntentInfo

PLAN_LINES = 20  # examples a plan lists before it says how many more


def _text(e: Example) -> str:
    return "(vector)" if e.text is None else escape(e.text)


def intent_table(infos: list[IntentInfo]) -> None:
    if not infos:
        out.print("no intents yet: agent-il learn FILE")
        return
    table = Table()
    for col in ("intent", "examples", "exemplars", "held-out", "tasks", "held-out accuracy"):
        table.add_column(col, justify="left" if col in ("intent", "tasks") else "right")
    for i in infos:
        tasks = escape(", ".join(i.tasks))
        table.add_row(
            escape(i.label), str(i.examples), str(i.exemplars), str(i.held_out), tasks, _pct(i.holdout_accuracy)
        )
    out.print(table)


def intent_detail(info: IntentInfo, examples: list[Example]) -> None:
    held = f"{info.held_out} held out"
    if info.holdout_accuracy is not None:
        held += f" ({info.holdout_accuracy:.1f}% labelled right now)"
    out.print(
        f"Intent [bold]{escape(info.label)}[/]: {_n(info.examples, 'example')}, "
        f"{_n(info.exemplars, 'exemplar')}, {held}; "
        f"learned in {escape(', '.join(info.tasks)) or '-'}"
    )
    example_table(examples, label=False)


def example_table(examples: list[Example], label: bool = True, limit: int | None = None) -> None:
    if not examples:
        out.print("no examples match")
        return
    table = Table()
    cols = ("id", "intent", "task", "text", "held-out") if label else ("id", "task", "text", "held-out")
    for col in cols:
        table.add_column(col)
    for e in examples:
        row = [e.id, escape(e.label), escape(e.task), _text(e), "yes" if e.held_out else ""]
        table.add_row(*(row if label else row[:1] + row[2:]))
    out.print(table)
    if limit is not None and len(examples) == limit:
        out.print(f"showing the first {limit}; raise --limit to see more")


def plan(headline: str, examples: list[Example] | None = None) -> list[str]:
    """What an edit will change, as plain lines: a headline, then the examples it touches."""
    lines = [headline]
    for e in (examples or [])[:PLAN_LINES]:
        held = ", held out" if e.held_out else ""
        lines.append(f"  {e.id}  {e.label} ({e.task}{held})  {e.text if e.text is not None else '(vector)'}")
    if examples and len(examples) > PLAN_LINES:
        lines.append(f"  ... and {len(examples) - PLAN_LINES} more")
    return lines


def n(count: int, word: str) -> str:
    """``1 example``, ``2 examples``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def counted(examples: list[Example]) -> str:
    """``3 examples (1 held out) of intents a, b``."""
    held = sum(e.held_out for e in examples)
    labels = list(dict.fromkeys(e.label for e in examples))
    intents = f"intent{'' if len(labels) == 1 else 's'} {', '.join(labels)}"
    return f"{n(len(examples), 'example')}{f' ({held} held out)' if held else ''} of {intents}"


def _held(count: int) -> str:
    return f" and {count} held out" if count else ""


def edit_report(r: EditReport, snapshot_kept: bool = True) -> None:
    """What an edit did: the action, the workspace now, the forgetting check, the snapshot and,
    for a purge, every place copies were erased from."""
    c = r.changed
    removed = n(r.examples_removed, "example") + _held(len(c["examples"]) - r.examples_removed)
    relabelled = n(r.examples_relabelled, "example") + _held(len(c["relabelled"]) - r.examples_relabelled)
    moved = Counter(v["to"] for v in c["relabelled"].values())
    gone, added = c["intents"]["gone"], c["intents"]["added"]
    into = moved.most_common(1)[0][0] if moved else (added[0] if added else "")
    what = {
        "remove": f"Removed {removed}",
        "relabel": f"Relabelled {relabelled} as {into}",
        "rename": f"Renamed intent {', '.join(gone)} to {into} ({relabelled})",
        "merge": f"Merged {', '.join(y for y in gone if y != into)} into {into} ({relabelled} relabelled)",
        "delete": f"Deleted intent {', '.join(gone)} ({removed})",
    }.get(r.action, r.action)
    out.print(escape(f"{what} in {r.seconds:.2f} s."))
    if r.action in ("remove", "relabel"):
        if added:
            out.print(escape(f"  new intents: {', '.join(added)}"))
        if gone:
            out.print(escape(f"  intents gone (no examples left): {', '.join(gone)}"))
    if r.action != "remove" and c["relabelled"]:
        out.print("  relabelled examples get new ids (--json maps old to new)")
    out.print(f"Workspace: {_n(r.classes_total, 'intent')}, {_n(r.examples_total, 'example')}.")
    if not r.exact:
        out.print("[yellow]note[/]: this strategy refits its head approximately; only ridge edits are exact")
    forgetting_table(r.holdout_accuracy, "edit")
    if r.snapshot and snapshot_kept:
        erased = ", without the erased texts" if r.purged else ""
        out.print(f"Snapshot of the state before: {r.snapshot}{erased} (agent-il rollback undoes this edit).")
    elif r.snapshot:
        out.print(f"The snapshot of the state before, {r.snapshot}, held the erased texts and was deleted.")
    if r.purged is not None:
        places = ", ".join(f"{where} {count}" for where, count in r.purged.items() if count)
        out.print(f"Erased every copy of the texts: {places or 'nothing else held them'}.")
