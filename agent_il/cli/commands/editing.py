"""``agent-il intents list|show|rename|merge|delete|confusions`` and ``examples list|remove|relabel``:
the knowledge base as data. An edit first shows what it will change and asks (``--yes`` answers
for it); the edit itself is agent_il.editing's, a transaction with an automatic snapshot like a
learn, so ``agent-il rollback`` undoes it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent_il.cli.commands.knowledge import intents_confusions
from agent_il.cli.context import Format, Home, Json, Split, TextCol, emit, guarded, open_learner, read_file

if TYPE_CHECKING:
    from agent_il.learner import IntentLearner
    from agent_il.results import EditReport, Example

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Make the change without asking first.")]
Ids = Annotated[
    list[str] | None, typer.Argument(help="Example ids, as `agent-il examples list` shows them.", show_default=False)
]
Texts = Annotated[
    list[str] | None,
    typer.Option(
        "--text", help="The exact text of the examples (repeatable): every example with it.", show_default=False
    ),
]
File = Annotated[
    Path | None,
    typer.Option(
        "--file", help="Texts, one per line (a CSV/TSV/JSONL/JSON file: its text column).", show_default=False
    ),
]


def register(app: typer.Typer) -> None:
    intents = typer.Typer(
        help="List, inspect, rename, merge and delete the intents a workspace knows.", no_args_is_help=True
    )
    for name, command in (
        ("list", intents_list),
        ("show", intents_show),
        ("rename", intents_rename),
        ("merge", intents_merge),
        ("delete", intents_delete),
        ("confusions", intents_confusions),
    ):
        intents.command(name)(command)
    app.add_typer(intents, name="intents")
    examples = typer.Typer(help="List, remove and relabel the examples a workspace learned.", no_args_is_help=True)
    examples.command("list")(examples_list)
    examples.command("remove")(examples_remove)
    examples.command("relabel")(examples_relabel)
    app.add_typer(examples, name="examples")


def interactive() -> bool:
    """Whether the user can be asked (stdin is a terminal)."""
    return sys.stdin.isatty()


def _go_ahead(lines: list[str], doing: str, yes: bool, as_json: bool) -> None:
    """Show what the edit will change (on stderr under --json; not at all with --json --yes), then
    go on with --yes or a yes at the prompt. Without a terminal to ask on, refuse: nothing changes."""
    from agent_il.errors import InvalidInputError

    if not (yes and as_json):
        for line in lines:
            typer.echo(line, err=as_json)
    if yes:
        return
    if not interactive():
        raise InvalidInputError(f"nothing changed: stdin is not a terminal to ask on; pass --yes to {doing}")
    if not typer.confirm(f"{doing[0].upper()}{doing[1:]}?", err=as_json):
        typer.echo("nothing changed", err=True)
        raise typer.Exit(1)


def _done(learner: IntentLearner, report: EditReport, as_json: bool) -> None:
    from agent_il.cli import render_editing

    if as_json:
        emit(report.to_dict())
        return
    kept = not report.purged or report.snapshot in learner.snapshots.names()  # --drop-snapshots may take it
    render_editing.edit_report(report, snapshot_kept=kept)


def _counts(examples: list[Example]) -> str:
    held = sum(e.held_out for e in examples)
    return f"{len(examples) - held} examples, {held} held out"


def _selection(
    ids: list[str] | None,
    texts: list[str] | None,
    file: Path | None,
    fmt: str | None,
    text_col: str | None,
    split: str | None,
) -> dict[str, list[str]]:
    """The examples a remove or relabel names: by IDS, --text or --file, exactly one of them."""
    from agent_il.errors import InvalidInputError

    given = [what for what, v in (("IDS", ids), ("--text", texts), ("--file", file)) if v]
    if len(given) != 1:
        got = f" (got {' and '.join(given)})" if given else ""
        raise InvalidInputError(f"name the examples by IDS, --text TEXT or --file FILE, one of them{got}")
    if ids:
        return {"ids": list(ids)}
    if texts:
        return {"texts": list(texts)}
    assert file is not None
    return {"texts": _file_texts(file, fmt, text_col, split)}


def _file_texts(path: Path, fmt: str | None, text_col: str | None, split: str | None) -> list[str]:
    """A data file's text column (as `predict --file` reads it), else one text per line."""
    from agent_il import data

    if fmt is not None or path.suffix.lower().lstrip(".") in (*data.FORMATS, "ndjson"):
        return read_file(path, fmt, text_col, None, split, labelled=False).texts
    return data.lines(path)


# ------------------------------------------------------------------------------------- intents
@guarded
def intents_list(ctx: typer.Context, home: Home = None, as_json: Json = False) -> None:
    """List the intents: examples, exemplars, held-out examples, the learns that taught them and
    the held-out accuracy the head has on them now.

    Example: `agent-il intents list`
    """
    from agent_il.cli import render_editing

    infos = open_learner(ctx, home).intents()
    emit({"intents": [i.to_dict() for i in infos]}) if as_json else render_editing.intent_table(infos)


@guarded
def intents_show(
    ctx: typer.Context,
    label: Annotated[str, typer.Argument(help="The intent.", show_default=False)],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show one intent: its counts, held-out accuracy and every example (id, text, task, held out).

    Example: `agent-il intents show pay_bill`
    """
    from agent_il.cli import render_editing

    learner = open_learner(ctx, home)
    examples = learner.examples(intent=label)
    info = next(i for i in learner.intents() if i.label == label)
    if as_json:
        emit({"intent": info.to_dict(), "examples": [e.to_dict() for e in examples]})
    else:
        render_editing.intent_detail(info, examples)


@guarded
def intents_rename(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="The intent to rename.", show_default=False)],
    new: Annotated[str, typer.Argument(help="Its new name, not in use.", show_default=False)],
    yes: Yes = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Rename an intent (its examples, held-out rows and column keep what they learned).

    Example: `agent-il intents rename balance account_balance --yes`
    """
    from agent_il import validation
    from agent_il.errors import InvalidInputError

    learner = open_learner(ctx, home)
    mine = learner.examples(intent=old)
    new = validation.labels([new], 1)[0]
    if new == old:
        raise InvalidInputError(f"intent {old!r} already has that name")
    if new in learner.labels:
        raise InvalidInputError(
            f"intent {new!r} exists; to make one of the two: agent-il intents merge {old} {new} --into {new}"
        )
    _go_ahead([f"Will rename intent {old} to {new}: {_counts(mine)}."], f"rename intent {old}", yes, as_json)
    _done(learner, learner.rename_intent(old, new), as_json)


@guarded
def intents_merge(
    ctx: typer.Context,
    labels: Annotated[list[str], typer.Argument(help="The intents to merge (two or more).", show_default=False)],
    into: Annotated[
        str, typer.Option("--into", help="The merged intent: one of them, or a new name.", show_default=False)
    ],
    yes: Yes = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Merge intents into one: every example of each becomes an example of --into.

    Example: `agent-il intents merge balance account_balance --into balance --yes`
    """
    from agent_il import validation
    from agent_il.errors import InvalidInputError

    learner = open_learner(ctx, home)
    names = list(dict.fromkeys(labels))
    if len(names) < 2:
        raise InvalidInputError("give at least two intents to merge")
    into = validation.labels([into], 1)[0]
    if into in learner.labels and into not in names:
        raise InvalidInputError(f"--into: {into!r} is another intent; list it among the intents to merge")
    parts = [f"{y} ({_counts(learner.examples(intent=y))})" for y in names]
    target = "one of them" if into in names else "a new intent"
    _go_ahead([f"Will merge intents {', '.join(parts)} into {into} ({target})."], f"merge into {into}", yes, as_json)
    _done(learner, learner.merge_intents(names, into=into), as_json)


@guarded
def intents_delete(
    ctx: typer.Context,
    label: Annotated[str, typer.Argument(help="The intent to delete.", show_default=False)],
    yes: Yes = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Delete an intent: its examples, exemplars, held-out rows and column go, as if never learned.

    Example: `agent-il intents delete translate --yes`
    """
    learner = open_learner(ctx, home)
    mine = learner.examples(intent=label)
    _go_ahead([f"Will delete intent {label}: {_counts(mine)}."], f"delete intent {label}", yes, as_json)
    _done(learner, learner.delete_intent(label), as_json)


# ------------------------------------------------------------------------------------ examples
@guarded
def examples_list(
    ctx: typer.Context,
    intent: Annotated[str | None, typer.Option("--intent", help="Only this intent's examples.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only those of this learn (task name or id).")] = None,
    search: Annotated[str | None, typer.Option("--search", help="Only those whose text holds this (any case).")] = None,
    limit: Annotated[
        str | None, typer.Option("--limit", metavar="INTEGER", help="Show at most this many (1 or more).")
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List the examples the workspace learned (then the held-out ones), oldest learn first.

    Example: `agent-il examples list --intent pay_bill --search water`
    """
    from agent_il import validation
    from agent_il.cli import render_editing

    n = None if limit is None else validation.positive_int(limit, "--limit", text=True)
    found = open_learner(ctx, home).examples(intent=intent, task=task, search=search, limit=n)
    emit({"examples": [e.to_dict() for e in found]}) if as_json else render_editing.example_table(found, limit=n)


@guarded
def examples_remove(
    ctx: typer.Context,
    ids: Ids = None,
    texts: Texts = None,
    file: File = None,
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Also erase the texts and their embeddings from every place the workspace keeps them: stores, "
            "inbox, embedding cache, snapshots (rewritten), Chroma's files. Local workspaces only.",
        ),
    ] = False,
    drop_snapshots: Annotated[
        bool,
        typer.Option("--drop-snapshots", help="With --purge: delete the snapshots holding them, not rewrite them."),
    ] = False,
    text_col: TextCol = None,
    fmt: Format = None,
    split: Split = None,
    yes: Yes = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Forget examples, learned or held out, as if they had never been learned.

    Example: `agent-il examples remove 4319cda1783240c5 0ce95cacf9fc4c6b`, or
    `agent-il examples remove --text "my card number is 1234" --purge --yes`
    """
    from agent_il.cli import render_editing
    from agent_il.errors import InvalidInputError

    if drop_snapshots and not purge:
        raise InvalidInputError("--drop-snapshots goes with --purge")
    chosen = _selection(ids, texts, file, fmt, text_col, split)
    learner = open_learner(ctx, home)
    found = learner.find_examples(**chosen)
    if purge and "ids" in chosen:  # a purge takes every example with those texts, not just the ones named
        same = [e.text for e in found if e.text is not None]
        found = learner.find_examples(texts=same) if same else found
    lines = render_editing.plan(f"Will remove {render_editing.counted(found)}:", found)
    if purge:
        snaps = "deleting" if drop_snapshots else "rewriting"
        lines.append(f"and erase their texts from every place the workspace keeps them, {snaps} the snapshots.")
    _go_ahead(lines, f"remove {len(found)} examples", yes, as_json)
    _done(learner, learner.remove_examples(**chosen, purge=purge, drop_snapshots=drop_snapshots), as_json)


@guarded
def examples_relabel(
    ctx: typer.Context,
    label: Annotated[
        str, typer.Option("--as", help="The new label: a known intent, or a new one.", show_default=False)
    ],
    ids: Ids = None,
    texts: Texts = None,
    file: File = None,
    text_col: TextCol = None,
    fmt: Format = None,
    split: Split = None,
    yes: Yes = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Give examples another label (a new one splits them off as a new intent).

    Example: `agent-il examples relabel 4319cda1783240c5 --as pay_bill --yes`
    """
    from agent_il import validation
    from agent_il.cli import render_editing

    label = validation.labels([label], 1)[0]
    chosen = _selection(ids, texts, file, fmt, text_col, split)
    learner = open_learner(ctx, home)
    found = learner.find_examples(**chosen)
    new = "" if label in learner.labels else " (a new intent)"
    lines = render_editing.plan(f"Will relabel {render_editing.counted(found)} as {label}{new}:", found)
    _go_ahead(lines, f"relabel {len(found)} examples as {label}", yes, as_json)
    _done(learner, learner.relabel(**chosen, to=label), as_json)
