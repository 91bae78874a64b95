"""``agent-il init``, ``status`` and ``doctor``: make a workspace, look at it, check it."""

from __future__ import annotations

from typing import Annotated

import typer

from agent_il.cli.context import Backend, Home, Json, emit, guarded, open_learner, where, workspace_exists


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(status)
    app.command()(doctor)


@guarded
def init(
    ctx: typer.Context,
    home: Home = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Encoder: a sentence-transformers name or local path (default: bundled all-MiniLM-L6-v2)."
        ),
    ] = None,
    backend: Backend = "auto",
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="Learning rule: ridge (default), ewc-replay, replay, ewc or naive.")
    ] = None,
    memory_per_class: Annotated[
        str | None,
        typer.Option("--memory-per-class", metavar="INTEGER", help="Exemplars kept per class (default 20)."),
    ] = None,
    memory_total: Annotated[
        str | None,
        typer.Option("--memory-total", metavar="INTEGER", help="Or: exemplars kept in all, shared by the classes."),
    ] = None,
    selection: Annotated[
        str, typer.Option("--selection", help="Which exemplars to keep: herding or random.")
    ] = "herding",
    auto_snapshots: Annotated[
        str,
        typer.Option("--auto-snapshots", metavar="INTEGER", help="Automatic pre-learn snapshots to keep (0: none)."),
    ] = "10",
    as_json: Json = False,
) -> None:
    """Create a workspace.

    Example: `agent-il init --home ./kb --strategy ewc-replay --memory-per-class 20`
    """
    from agent_il import validation
    from agent_il.encoding.encoder import Encoder
    from agent_il.errors import WorkspaceError

    per_class, total = (
        None if v is None else validation.positive_int(v, flag, validation.MAX_MEMORY, text=True)
        for v, flag in ((memory_per_class, "--memory-per-class"), (memory_total, "--memory-total"))
    )
    snapshots = validation.non_negative_int(
        auto_snapshots, "--auto-snapshots", validation.MAX_AUTO_SNAPSHOTS, text=True
    )
    exists, location = workspace_exists(ctx, home)
    if exists:
        raise WorkspaceError(f"{location} is already a workspace; use it, or choose another one")
    encoder = Encoder(model, backend=backend)
    _ = encoder.dim  # a model that cannot load (or export) fails here, before anything is created
    learner = open_learner(
        ctx,
        home,
        create=True,
        encoder=encoder,
        strategy=strategy,
        memory_per_class=per_class,
        memory_total=total,
        selection=selection,
        auto_snapshots=snapshots,
    )
    info = learner.status()
    if as_json:
        emit(info)
    else:
        typer.echo(
            f"Created workspace {info['path']} (model {info['model']}, backend {info['backend']}, "
            f"strategy {info['strategy']})."
        )
        typer.echo("Next: agent-il learn FILE --task NAME")


@guarded
def status(ctx: typer.Context, home: Home = None, as_json: Json = False) -> None:
    """Show a workspace: model, strategy, classes, tasks, exemplars, snapshots, size on disk.

    Example: `agent-il status --home ./kb`
    """
    from agent_il.cli import render

    info = open_learner(ctx, home).status()
    emit(info) if as_json else render.status(info)


@guarded
def doctor(
    ctx: typer.Context,
    home: Home = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Bring the workspace back to its newest intact state: the newest intact snapshot "
            "if the state or its weights are damaged, the statistics derived again if they are.",
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Check that head, metadata, memory and snapshots agree; clean what interrupted commands left.

    Lists every problem it finds (a workspace too damaged to open included) and which snapshots
    are intact. Exit status 1 if a problem remains. On a Chroma server, leftovers are cleaned
    once 15 minutes old, so that writes in progress elsewhere are left alone.

    Example: `agent-il doctor --home ./kb --repair`
    """
    from agent_il.learner import IntentLearner

    exists, location = workspace_exists(ctx, home)
    if not exists:
        from agent_il.errors import WorkspaceError

        raise WorkspaceError(f"no workspace at {location}")
    found = IntentLearner.check(**where(ctx).location(home), repair=repair)
    if as_json:
        emit(found.to_dict())
    else:
        from agent_il.cli import render

        render.diagnosis(found)
    if not found.ok:
        raise typer.Exit(1)
