"""The root of ``agent-il``: its global options (where the workspace lives) and the registration of
the command modules. Parse, call the core, print; no learning logic lives in the CLI."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from agent_il.cli.commands import (
    bench,
    editing,
    feedback,
    knowledge,
    learning,
    plugins,
    serving,
    snapshots,
    tokens,
    transfer,
    workspace,
)
from agent_il.cli.context import Where, set_debug

# The order `agent-il --help` lists the commands in, whichever module registers them.
ORDER = (
    "init",
    "status",
    "learn",
    "predict",
    "feedback",
    "evaluate",
    "rollback",
    "doctor",
    "bench",
    "calibrate",
    "discover",
    "tasks",
    "snapshot",
    "plugins",
    "serve",
    "token",
    "intents",
    "examples",
    "inbox",
    "export",
    "import",
)


class ListedGroup(TyperGroup):
    """Lists the commands in :data:`ORDER` (an unlisted one last), so that the help reads from
    making a workspace to serving it, not in the order the modules happen to be registered."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


app = typer.Typer(
    name="agent-il",
    help="Teach an agent new intents from labelled examples, without forgetting the old ones.",
    cls=ListedGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.callback()
def root(
    ctx: typer.Context,
    chroma_url: Annotated[
        str | None,
        typer.Option(
            "--chroma-url",
            envvar="AGENT_IL_CHROMA_URL",
            help="Use a workspace on this Chroma server (http://HOST:PORT), shared by every agent that "
            "names it, instead of the directory --home.",
        ),
    ] = None,
    workspace_name: Annotated[
        str, typer.Option("--workspace", envvar="AGENT_IL_WORKSPACE", help="Workspace name on the Chroma server.")
    ] = "default",
    tenant: Annotated[str | None, typer.Option("--tenant", envvar="AGENT_IL_TENANT", help="Chroma tenant.")] = None,
    database: Annotated[
        str | None, typer.Option("--database", envvar="AGENT_IL_DATABASE", help="Chroma database.")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", envvar="AGENT_IL_WAIT", help="Seconds to wait for a local workspace another process has open."
        ),
    ] = 0.0,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="AGENT_IL_DEBUG",
            help="On an error, print the traceback after the one-line message (for a bug report).",
        ),
    ] = False,
) -> None:
    """Teach an agent new intents from labelled examples, without forgetting the old ones.

    Workspaces are local directories (`--home`) or live on a Chroma server
    (`agent-il --chroma-url http://127.0.0.1:8000 --workspace support learn FILE`).
    """
    set_debug(debug)
    ctx.obj = Where(chroma_url, workspace_name, tenant, database, wait)


for module in (workspace, learning, feedback, snapshots, knowledge, editing, bench, plugins, serving, tokens, transfer):
    module.register(app)


def main() -> None:
    """The ``agent-il`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
