"""``agent-il plugins``: list the agent-framework adapters installed under the ``agent_il.adapters``
entry-point group (their discovery is agent_il.tools.adapters; the core never imports an adapter's
framework). ``agent-il serve`` runs one, or the REST API: :mod:`agent_il.cli.commands.serving`."""

from __future__ import annotations

import typer

from agent_il.cli.context import Json, emit, guarded


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)


@guarded
def plugins(as_json: Json = False) -> None:
    """List the installed agent-framework adapters (MCP, LangChain, OpenAI Agents, ...).

    Example: `agent-il plugins --json`
    """
    from agent_il.tools import adapters

    found = [adapters.describe(ep) for ep in adapters.installed()]
    if as_json:
        emit({"adapters": found})
        return
    if not found:
        typer.echo(f"No adapters installed. Install them with: {adapters.INSTALL_HINT}")
    for a in found:
        where = f"{a['distribution']} {a['version']}"
        if a["error"]:
            typer.echo(f"{a['name']:<14} {where}  BROKEN: {a['error']}")
        else:
            serve = f"  (agent-il serve {a['name']})" if a["serve"] else ""
            typer.echo(f"{a['name']:<14} {where}  {a['description']}{serve}")
