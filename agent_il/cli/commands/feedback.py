"""``agent-il feedback``: the operator's own correction ("no, that meant X"), learned at once as a
``feedback:DATE`` task (the operator is trusted), or queued for review beside the agents' ones
(``--review``); and how corrections are printed, for ``learn --corrections`` and the ``inbox``
commands. Parse, call agent_il.inbox.corrections, print."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent_il.cli.context import Home, Json, Model, emit, guarded, open_learner

if TYPE_CHECKING:
    from agent_il.data import Dataset
    from agent_il.inbox.corrections import Correction
    from agent_il.inbox.review import Pending

NewIntent = Annotated[
    bool,
    typer.Option("--new-intent", help="Let a correction's label be a new intent (by default it must be a known one)."),
]


def register(app: typer.Typer) -> None:
    app.command()(feedback)


@guarded
def feedback(
    ctx: typer.Context,
    texts: Annotated[
        list[str], typer.Argument(metavar="TEXT", help="The message(s) the agent got wrong.", show_default=False)
    ],
    label: Annotated[str, typer.Option("--label", help="The intent they meant.", show_default=False)],
    review: Annotated[
        bool, typer.Option("--review", help="Queue it for review (agent-il inbox accept) instead of learning it.")
    ] = False,
    new_intent: NewIntent = False,
    model: Model = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Correct a message the agent classified wrongly: learn that TEXT means intent --label.

    Learned at once as one task named `feedback:DATE` (its examples keep `source=feedback`):
    a snapshot first (`agent-il rollback` undoes it), then the forgetting check. `--review`
    queues it beside the agents' corrections instead (`agent-il inbox list`). The label must
    be a known intent unless `--new-intent`.

    Example: `agent-il feedback "can you freeze my bank account" --label freeze_account`
    """
    from agent_il import validation
    from agent_il.inbox import corrections

    validation.texts(texts, max_chars=validation.max_text_chars())  # checked before the workspace is opened
    validation.labels([label], 1)
    learner = open_learner(ctx, home, model)
    out = corrections.correct(learner, texts, [label] * len(texts), review=review, new_intent=new_intent, sender="cli")
    show(out, as_json)


def learn_corrections(
    ctx: typer.Context, dataset: Dataset, home: Path | None, model: str | None, as_json: bool
) -> None:
    """``learn FILE --corrections``: the file's rows as one feedback task, learned at once."""
    from agent_il.cli import render
    from agent_il.errors import InvalidInputError
    from agent_il.inbox import corrections

    assert dataset.labels is not None
    if dataset.fallback:
        raise InvalidInputError(
            f"{dataset.source}: {len(dataset.fallback)} rows are out of scope; a correction names the intent a "
            "message meant (learn FILE without --corrections fits them into the unknown threshold)"
        )
    learner = open_learner(ctx, home, model)
    with render.progress(enabled=not as_json, what="Encoding") as advance:
        out = corrections.correct(learner, dataset.texts, dataset.labels, sender="cli", on_progress=advance)
    show(out, as_json)


def show(out: Correction, as_json: bool) -> None:
    """A correction's outcome: the learn report, or where it waits."""
    from agent_il.cli import render

    if as_json:
        emit(out.to_dict())
        return
    if out.report is None:
        ids = ", ".join(out.ids)
        typer.echo(f"Queued {_n(len(out.ids), 'correction')} for review: {ids} (agent-il inbox accept ID learns it).")
        return
    render.learn_report(out.report)
    before = Counter(out.predicted).most_common()
    answered = ", ".join(f"{label} ({n})" for label, n in before)
    typer.echo(f"Learned {_n(len(out.labels), 'correction')}; before, the agent answered: {answered}.")


def pending_table(items: list[Pending], total: int) -> None:
    """The corrections waiting for review, as ``inbox list`` shows them."""
    from rich.markup import escape
    from rich.table import Table

    from agent_il.cli.render import out

    table = Table(title=f"{_n(total, 'correction')} waiting for review", title_justify="left")
    for col in ("id", "text", "label", "was", "from", "sent"):
        table.add_column(col)
    for p in items:
        sent = time.strftime("%Y-%m-%d %H:%M", time.gmtime(p.time))
        table.add_row(p.id, escape(p.text), escape(p.label), escape(p.predicted), p.sender, sent)
    out.print(table)
    out.print("Learn them: agent-il inbox accept ID... (or --all); drop them: agent-il inbox reject ID...")


def _n(count: int, one: str) -> str:
    return f"{count} {one if count == 1 else one + 's'}"
