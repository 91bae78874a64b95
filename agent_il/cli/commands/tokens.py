"""``agent-il token create|list|revoke``: the bearer tokens ``agent-il serve`` accepts over HTTP.
They live in the workspace directory (``tokens.json``), or in the file ``--tokens`` names (the
only place for a workspace on a Chroma server). No workspace is opened, so tokens can be made and
revoked while a server runs on it; the server reads the file again at the next request."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent_il.cli.context import Home, Json, emit, guarded, home_path, where, workspace_exists

if TYPE_CHECKING:
    from agent_il.serving.tokens import TokenStore

TokensFile = Annotated[
    Path | None,
    typer.Option(
        "--tokens",
        envvar="AGENT_IL_TOKENS",
        help="Token file (default: tokens.json in the workspace directory; required for a Chroma-server workspace).",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    token = typer.Typer(help="Create, list and revoke the bearer tokens of agent-il serve.", no_args_is_help=True)
    token.command("create")(token_create)
    token.command("list")(token_list)
    token.command("revoke")(token_revoke)
    app.add_typer(token, name="token")


def token_store(ctx: typer.Context, home: Path | None, tokens: Path | None) -> TokenStore:
    """The token file the options name: ``--tokens``, else ``tokens.json`` in the workspace directory."""
    from agent_il.errors import InvalidInputError, WorkspaceError
    from agent_il.serving.tokens import TOKENS_FILE, TokenStore

    if tokens is not None:
        return TokenStore(tokens)
    if where(ctx).chroma_url:
        raise InvalidInputError(
            "a workspace on a Chroma server keeps no local files: give the token file with --tokens"
        )
    root = home_path(home)
    if not workspace_exists(ctx, home)[0]:  # a tokens.json in a plain directory would block agent-il init there
        raise WorkspaceError(f"no workspace at {root}; create one with: agent-il init --home {root}, or give --tokens")
    return TokenStore(root / TOKENS_FILE)


@guarded
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what holds it, e.g. ci-agent.", show_default=False)],
    scope: Annotated[
        str,
        typer.Option(
            "--scope", help="read (classify, list), learn (also learn, correct), admin (also snapshot, roll back)."
        ),
    ] = "read",
    home: Home = None,
    tokens: TokensFile = None,
    as_json: Json = False,
) -> None:
    """Make a token and print it once; only its hash is stored.

    Example: `agent-il token create support-bot --scope learn`
    """
    store = token_store(ctx, home, tokens)
    secret = store.create(name, scope)
    if as_json:
        emit({"name": name, "scope": scope, "token": secret, "file": str(store.path)})
        return
    typer.echo(secret)
    typer.echo(f"Created token {name} ({scope}) in {store.path}; it is shown only now.", err=True)


@guarded
def token_list(ctx: typer.Context, home: Home = None, tokens: TokensFile = None, as_json: Json = False) -> None:
    """List the tokens: name, scope, when made (never the tokens themselves).

    Example: `agent-il token list`
    """
    found = [t.public() for t in token_store(ctx, home, tokens).tokens()]
    if as_json:
        emit({"tokens": found})
        return
    if not found:
        typer.echo("No tokens. Make one with: agent-il token create NAME --scope read")
    for t in found:
        typer.echo(f"{t['name']:<24} {t['scope']:<6} {t['created']}")


@guarded
def token_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name (agent-il token list).", show_default=False)],
    home: Home = None,
    tokens: TokensFile = None,
    as_json: Json = False,
) -> None:
    """Revoke a token: a running server refuses it from its next request.

    Example: `agent-il token revoke support-bot`
    """
    gone = token_store(ctx, home, tokens).revoke(name)
    emit({"revoked": gone.name}) if as_json else typer.echo(f"Revoked token {gone.name}.")
