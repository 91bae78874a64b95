"""``agent-il calibrate``, ``intents confusions``, ``inbox list|learn|clear|accept|reject`` and
``discover``: what the agent knows it does not know, and the corrections waiting for review. Parse,
call the learner, print; the logic is in agent_il.ood and agent_il.inbox. ``intents confusions``
joins the ``intents`` group agent_il.cli.commands.editing makes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agent_il.cli.context import (
    Format,
    Home,
    Json,
    LabelCol,
    Model,
    Split,
    TextCol,
    emit,
    guarded,
    open_learner,
    read_file,
)


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
    app.command()(discover)
    inbox = typer.Typer(
        help="Inputs rejected as unknown, waiting to become new intents, and corrections waiting for review.",
        no_args_is_help=True,
    )
    inbox.command("list")(inbox_list)
    inbox.command("learn")(inbox_learn)
    inbox.command("clear")(inbox_clear)
    inbox.command("accept")(inbox_accept)
    inbox.command("reject")(inbox_reject)
    app.add_typer(inbox, name="inbox")


def _calibration_dict(cal: dict[str, Any]) -> dict[str, Any]:
    """The setting as users read it: without the score's internal quantiles and norm."""
    return {k: v for k, v in cal.items() if k not in ("quantiles", "norm")}


@guarded
def calibrate(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Labelled examples; rows labelled --oos-label are out of scope, the others known intents.",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        float | None, typer.Option("--keep", help="Set the threshold to keep this share of in-scope inputs (0-1].")
    ] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Set the in-scope score threshold.")] = None,
    oos_label: Annotated[str, typer.Option("--oos-label", help="The label of out-of-scope rows in FILE.")] = "oos",
    text_col: TextCol = None,
    label_col: LabelCol = None,
    fmt: Format = None,
    split: Split = None,
    model: Model = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show or set when `predict` answers `unknown`: the in-scope score threshold.

    Every learn recalibrates it to keep 95% of in-scope inputs (its own examples scored as
    left out with their run of neighbours, and the held-out slices). `--keep` changes that rate, `--threshold` sets the
    score directly, and FILE fits it on labelled out-of-scope examples; the workspace keeps the
    matching keep rate for later learns. Without options, shows the current setting.

    Example: `agent-il calibrate examples/data/clinc150/data_full.json --split oos_val`
    """
    from agent_il import validation
    from agent_il.cli import render
    from agent_il.errors import InvalidInputError

    if keep is not None:
        keep = validation.keep_rate(keep, "--keep")
    if threshold is not None:
        threshold = validation.threshold(threshold, "--threshold")
    learner = open_learner(ctx, home, model)
    if file is None and keep is None and threshold is None:
        cal = learner.calibrator.setting()
        if cal is None:
            raise InvalidInputError("nothing calibrated yet: learn first")
        result = _calibration_dict(cal)
    elif file is not None:
        if keep is not None or threshold is not None:
            raise InvalidInputError("give FILE, --keep or --threshold, one of them")
        dataset = read_file(file, fmt, text_col, label_col, split, labelled=True)
        result = learner.calibrate(texts=dataset.texts, labels=dataset.labels, oos_label=oos_label)
    else:
        result = learner.calibrate(keep=keep, threshold=threshold)
    emit(result) if as_json else render.calibration(result)


@guarded
def intents_confusions(
    ctx: typer.Context,
    top: Annotated[str, typer.Option("--top", metavar="INTEGER", help="How many pairs to list (1 or more).")] = "10",
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List the most confused pairs of intents: how often one's examples are taken for the other.

    Rows are the exemplar memory (scored leave-one-out by the ridge head) and the held-out slices;
    the cosine between the two intents' mean embeddings is shown as evidence.

    Example: `agent-il intents confusions --top 5`
    """
    from agent_il import validation
    from agent_il.cli import render

    n = validation.positive_int(top, "--top", text=True)
    pairs = open_learner(ctx, home).confusions(top=n)
    emit({"confusions": pairs}) if as_json else render.confusion_table(pairs)


@guarded
def inbox_list(
    ctx: typer.Context,
    limit: Annotated[
        str, typer.Option("--limit", metavar="INTEGER", help="Show at most this many (newest last; 1 or more).")
    ] = "50",
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List the inputs `predict` rejected as unknown, and the corrections waiting for review, oldest first.

    Example: `agent-il inbox list --limit 20`
    """
    from agent_il import validation
    from agent_il.cli import render
    from agent_il.cli.commands.feedback import pending_table

    limit_n = validation.positive_int(limit, "--limit", text=True)
    inbox = open_learner(ctx, home).inbox
    recs = inbox.items()
    items = [
        {"id": i, "text": t, "closest": str(m["label"]), "score": m.get("score"), "time": m.get("time")}
        for i, t, m in zip(recs.ids, recs.texts, recs.metadatas)
    ]
    pending = inbox.corrections.items()
    if as_json:
        fixes = [p.to_dict() for p in pending[-limit_n:]]
        emit({"items": items[-limit_n:], "total": len(items), "corrections": fixes, "corrections_total": len(pending)})
        return
    if items or not pending:
        render.inbox_table(items[-limit_n:], len(items))
    if pending:
        pending_table(pending[-limit_n:], len(pending))


@guarded
def inbox_learn(
    ctx: typer.Context,
    cluster: Annotated[str, typer.Argument(help="Cluster key, as `agent-il discover` shows it.", show_default=False)],
    label: Annotated[str, typer.Option("--as", help="Name of the new intent.", show_default=False)],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Learn an inbox cluster as a new intent (a normal learn), then take it out of the inbox.

    Example: `agent-il inbox learn 3fa9c2d1 --as plug_type`
    """
    from agent_il.cli import render

    report = open_learner(ctx, home).learn_inbox(cluster, label)
    emit(report.to_dict()) if as_json else render.learn_report(report)


@guarded
def inbox_clear(ctx: typer.Context, home: Home = None, as_json: Json = False) -> None:
    """Empty the inbox of unknown inputs (corrections waiting for review stay: `inbox reject --all`).

    Example: `agent-il inbox clear`
    """
    n = open_learner(ctx, home).inbox.forget()
    emit({"deleted": n}) if as_json else typer.echo(f"Removed {n} {'item' if n == 1 else 'items'} from the inbox.")


Ids = Annotated[
    list[str] | None,
    typer.Argument(help="Ids of corrections, as `agent-il inbox list` shows them.", show_default=False),
]
All = Annotated[bool, typer.Option("--all", help="Every correction waiting for review.")]


def _chosen(ids: list[str] | None, every: bool) -> list[str] | None:
    """The ids to act on, or None for all of them."""
    from agent_il.errors import InvalidInputError

    if bool(ids) == every:
        raise InvalidInputError("give the ids of corrections, or --all, one of them")
    return None if every else ids


@guarded
def inbox_accept(
    ctx: typer.Context,
    ids: Ids = None,
    every: All = False,
    new_intent: Annotated[
        bool,
        typer.Option("--new-intent", help="Let a correction's label be a new intent (by default it must be known)."),
    ] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Learn corrections waiting for review (one task named `feedback:DATE`), then take them out.

    A normal learn: a snapshot first (`agent-il rollback` undoes it), then the forgetting check.
    A label that is no known intent (renamed or deleted meanwhile) is refused unless `--new-intent`.

    Example: `agent-il inbox accept fb-3fa9c2d1e8b07a64`, or `agent-il inbox accept --all`
    """
    from agent_il.cli import render
    from agent_il.cli.commands.feedback import show
    from agent_il.inbox import corrections

    chosen = _chosen(ids, every)
    learner = open_learner(ctx, home)
    with render.progress(enabled=not as_json, what="Encoding") as advance:
        out = corrections.accept(learner, chosen, new_intent=new_intent, on_progress=advance)
    show(out, as_json)


@guarded
def inbox_reject(
    ctx: typer.Context, ids: Ids = None, every: All = False, home: Home = None, as_json: Json = False
) -> None:
    """Drop corrections waiting for review, unlearned.

    Example: `agent-il inbox reject fb-3fa9c2d1e8b07a64`, or `agent-il inbox reject --all`
    """
    n = open_learner(ctx, home).inbox.corrections.reject(_chosen(ids, every))
    emit({"rejected": n}) if as_json else typer.echo(f"Rejected {n} {'correction' if n == 1 else 'corrections'}.")


@guarded
def discover(
    ctx: typer.Context,
    distance: Annotated[
        float | None, typer.Option("--distance", help="Cosine distance at which clusters stop merging (default 0.5).")
    ] = None,
    min_size: Annotated[
        str | None, typer.Option("--min-size", metavar="INTEGER", help="Smallest cluster to propose (default 3).")
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Cluster the inbox into candidate new intents, with sizes and representative examples.

    Example: `agent-il discover`, then `agent-il inbox learn KEY --as NEW_INTENT`
    """
    from agent_il import validation
    from agent_il.cli import render

    if distance is not None:
        distance = validation.distance(distance, "--distance")
    size = None if min_size is None else validation.positive_int(min_size, "--min-size", text=True)
    clusters = open_learner(ctx, home).inbox.discover(distance=distance, min_size=size)
    emit({"clusters": [c.to_dict() for c in clusters]}) if as_json else render.cluster_table(clusters)
