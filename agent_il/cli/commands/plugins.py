"""``agent-il plugins`` and ``agent-il serve``: list the agent-framework adapters installed under
the ``agent_il.adapters`` entry-point group, and run one as a server. Their discovery is
agent_il.tools.adapters; the core never imports an adapter's framework, and ``serve`` hands the
adapter an :class:`agent_il.tools.surface.IntentTools`."""

from __future__ import annotations

from typing import Annotated

import typer

from agent_il.cli.context import Home, Json, emit, guarded, open_learner

MAX_EXAMPLES = 10_000  # the most --max-examples allows in one learn_intent call


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("serve")(serve)


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


@guarded
def serve(
    ctx: typer.Context,
    adapter: Annotated[
        str, typer.Argument(help="Adapter to run, e.g. mcp (see agent-il plugins).", show_default=False)
    ],
    transport: Annotated[str, typer.Option("--transport", help="stdio, or http (streamable HTTP).")] = "stdio",
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind with --transport http (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        str | None,
        typer.Option("--port", metavar="INTEGER", help="Port with --transport http, 1-65535 (default 8765)."),
    ] = None,
    allow_learning: Annotated[
        bool, typer.Option("--allow-learning", help="Offer learn_intent: let the agent teach itself new intents.")
    ] = False,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow binding a non-loopback address (there is no authentication).")
    ] = False,
    inbox: Annotated[
        bool,
        typer.Option(
            "--inbox/--no-inbox", help="Keep messages classified as unknown in the inbox (agent-il discover)."
        ),
    ] = True,
    max_examples: Annotated[
        str,
        typer.Option("--max-examples", metavar="INTEGER", help="Most examples one learn_intent call may give."),
    ] = "100",
    max_text_chars: Annotated[
        str,
        typer.Option("--max-text-chars", metavar="INTEGER", help="Longest text to classify or learn, in characters."),
    ] = "1000",
    home: Home = None,
) -> None:
    """Serve the workspace's tools to agents through an adapter (e.g. an MCP server).

    Tools: classify_intent and list_intents; learn_intent only with --allow-learning. HTTP binds
    127.0.0.1 unless you pass --allow-remote.

    Example: `agent-il serve mcp --home ./kb`, or `agent-il serve mcp --transport http --port 8765`
    """
    from agent_il import validation
    from agent_il.errors import InvalidInputError
    from agent_il.tools import adapters
    from agent_il.tools.adapters import DEFAULT_PORT, ServeOptions
    from agent_il.tools.models import ToolLimits
    from agent_il.tools.surface import IntentTools

    port_n = None if port is None else validation.integer(port, "--port", 1, 65535, text=True)
    n_examples = validation.positive_int(max_examples, "--max-examples", MAX_EXAMPLES, text=True)
    n_chars = validation.positive_int(max_text_chars, "--max-text-chars", validation.MAX_TEXT_CHARS_LIMIT, text=True)
    plugin = adapters.load(adapter)
    if plugin.serve is None:
        raise InvalidInputError(f"adapter {adapter!r} is a library to import, not a server: {plugin.description}")
    if transport not in plugin.transports:
        raise InvalidInputError(f"adapter {adapter!r} serves over {', '.join(plugin.transports)}, not {transport!r}")
    if transport == "stdio" and (host is not None or port_n is not None):
        raise InvalidInputError("--host and --port apply to --transport http; stdio talks over stdin/stdout")
    host, port_n = host or "127.0.0.1", port_n or DEFAULT_PORT
    if not adapters.is_loopback(host) and not allow_remote:
        raise InvalidInputError(
            f"refusing to bind {host}: the server has no authentication, so anyone who can reach it could use "
            "it. Bind 127.0.0.1, or pass --allow-remote behind a proxy that authenticates."
        )
    limits = ToolLimits(max_examples=n_examples, max_text_chars=n_chars)
    learner = open_learner(ctx, home)
    tools = IntentTools(learner, allow_learning=allow_learning, limits=limits, inbox=inbox)
    if transport != "stdio":  # stdout is the protocol channel on stdio: say nothing there
        state = "enabled" if allow_learning else "disabled (--allow-learning enables it)"
        typer.echo(f"agent-il: serving {adapter} over {transport} on {host}:{port_n}; learning {state}", err=True)
    try:
        plugin.serve(tools, ServeOptions(transport=transport, host=host, port=port_n))
    finally:
        learner.close()
