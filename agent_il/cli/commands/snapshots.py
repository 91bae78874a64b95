"""``agent-il snapshot create|list|restore|delete`` and ``rollback``: named copies of a workspace,
and undoing a learn from the automatic one taken before it."""

from __future__ import annotations

from typing import Annotated

import typer

from agent_il.cli.context import Home, Json, emit, guarded, open_learner


def register(app: typer.Typer) -> None:
    snapshot = typer.Typer(help="Save, list, restore and delete named copies of a workspace.", no_args_is_help=True)
    snapshot.command("create")(snapshot_create)
    snapshot.command("list")(snapshot_list)
    snapshot.command("restore")(snapshot_restore)
    snapshot.command("delete")(snapshot_delete)
    app.add_typer(snapshot, name="snapshot")
    app.command()(rollback)


@guarded
def snapshot_create(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Letters, digits, '.', '_', '-' (default: a timestamp).", show_default=False)
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Save the workspace as it is now: head, EWC state, labels, tasks and exemplar memory.

    Example: `agent-il snapshot create before-release`
    """
    info = open_learner(ctx, home).snapshot(name)
    emit(info.to_dict()) if as_json else typer.echo(
        f"Saved snapshot {info.name} ({info.classes} classes, {info.tasks} tasks)."
    )


@guarded
def snapshot_list(ctx: typer.Context, home: Home = None, as_json: Json = False) -> None:
    """List snapshots, oldest first (auto-* are taken before each learn).

    Example: `agent-il snapshot list`
    """
    from agent_il.cli import render

    history = open_learner(ctx, home).snapshots
    snaps, (_, damaged) = history.list(), history.readable()
    if as_json:
        emit({"snapshots": [s.to_dict() for s in snaps], "damaged": damaged})
        return
    render.snapshot_table(snaps)
    for name in damaged:
        typer.echo(f"damaged: {name} (agent-il doctor says why; agent-il snapshot delete {name} removes it)")


@guarded
def snapshot_restore(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Snapshot to restore.", show_default=False)],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Bring back a snapshot, all of it or nothing (the current state is snapshotted first).

    Example: `agent-il snapshot restore before-release`
    """
    info = open_learner(ctx, home).restore(name)
    emit(info.to_dict()) if as_json else typer.echo(
        f"Restored {info.name}: {info.classes} classes, {info.tasks} tasks."
    )


@guarded
def snapshot_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Snapshot to delete.", show_default=False)],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Delete a snapshot.

    Example: `agent-il snapshot delete before-release`
    """
    open_learner(ctx, home).delete_snapshot(name)
    emit({"deleted": name}) if as_json else typer.echo(f"Deleted snapshot {name}.")


@guarded
def rollback(ctx: typer.Context, home: Home = None, as_json: Json = False) -> None:
    """Undo the last learn: restore the state from just before it.

    Run it again to go further back (one step per automatic snapshot kept).

    Example: `agent-il rollback`
    """
    info = open_learner(ctx, home).rollback()
    if as_json:
        emit({"restored": info.to_dict()})
    else:
        typer.echo(f"Rolled back to the state before the last learn: {info.classes} classes, {info.tasks} tasks.")
