"""``agent-il serve``: the REST API (``serve http``) or an agent-framework adapter (``serve mcp``)
over one workspace. Over HTTP both take bearer tokens (``agent-il token``), the Host/Origin
allow-list, body and rate limits, TLS and JSON logs; a non-loopback address is refused unless
tokens are on (``--allow-remote`` forces it, with a warning). The parts are agent_il.serving; an
adapter gets an :class:`agent_il.tools.surface.IntentTools` and the HTTP settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent_il.cli.commands.tokens import TokensFile
from agent_il.cli.context import Home, guarded, home_path, open_learner, where

if TYPE_CHECKING:
    from agent_il.serving.runner import HttpSettings
    from agent_il.serving.tokens import TokenStore

MAX_EXAMPLES = 10_000  # the most --max-examples allows in one learn_intent call
REST = "http"  # `agent-il serve http`: the REST API, not an adapter


@dataclass(frozen=True)
class HttpOptions:
    """The options of ``serve`` that apply over HTTP, as given."""

    tokens: Path | None
    auth: bool | None
    allow_remote: bool
    allow_learning: bool
    allowed_host: list[str] | None
    allowed_origin: list[str] | None
    rate_limit: str | None
    max_body_bytes: str | None
    ssl_certfile: Path | None
    ssl_keyfile: Path | None
    forwarded_allow_ips: list[str] | None
    log_json: bool


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _tokens(ctx: typer.Context, home: Path | None, tokens: Path | None, auth: bool | None) -> TokenStore | None:
    """The token file when authentication is on. It fails closed: ``--no-auth`` alone turns it off.
    A file named by ``--tokens`` / ``AGENT_IL_TOKENS`` must exist and hold a token (a typo must not
    expose the API); a workspace's ``tokens.json``, once made, keeps it on even with every token
    revoked (each request is then 401); only where no token file was ever made is it off by default."""
    from agent_il.errors import InvalidInputError
    from agent_il.serving.tokens import TOKENS_FILE, TokenStore

    if auth is False:
        return None
    if tokens is not None:
        store = TokenStore(tokens)
        problem = "no such file" if not store.path.is_file() else "no tokens in" if not store.tokens() else None
        if problem is not None:
            raise InvalidInputError(
                f"--tokens: {problem} {store.path}; make a token with agent-il token create NAME --tokens FILE, "
                "or serve without authentication with --no-auth"
            )
        return store
    if not where(ctx).chroma_url and (home_path(home) / TOKENS_FILE).is_file():
        return TokenStore(home_path(home) / TOKENS_FILE)
    if auth:
        raise InvalidInputError("--auth: no token file; make a token with agent-il token create NAME")
    return None  # no token file was ever made here (a Chroma-server workspace keeps none: --tokens FILE)


def _http_settings(ctx: typer.Context, home: Path | None, host: str, options: HttpOptions) -> HttpSettings:
    from agent_il import validation
    from agent_il.errors import InvalidInputError
    from agent_il.serving.guard import DEFAULT_MAX_BODY, LOOPBACK_HOSTS, GuardSettings
    from agent_il.serving.runner import HttpSettings
    from agent_il.tools import adapters

    store = _tokens(ctx, home, options.tokens, options.auth)
    if store is None:
        if not adapters.is_loopback(host):
            if not options.allow_remote:
                raise InvalidInputError(
                    f"refusing to bind {host} without authentication: make a token (agent-il token create NAME "
                    "--scope read) and serve with it, or pass --allow-remote behind a proxy that authenticates"
                )
            _say(f"WARNING: serving {host} without authentication (--allow-remote)", options.log_json, logging.WARNING)
        else:
            _say(
                f"WARNING: serving {host} without authentication: any local process may call it "
                "(agent-il token create NAME turns tokens on)",
                options.log_json,
                logging.WARNING,
            )
    hosts = tuple(options.allowed_host or ())
    if not hosts:  # on every address any name may reach it: --allowed-host narrows that
        hosts = ("*",) if adapters.is_wildcard(host) else tuple(dict.fromkeys((*LOOPBACK_HOSTS, host.strip("[]"))))
    guard = GuardSettings(
        allowed_hosts=hosts,
        allowed_origins=tuple(o.rstrip("/") for o in options.allowed_origin or ()),
        max_body_bytes=validation.positive_int(
            options.max_body_bytes or str(DEFAULT_MAX_BODY), "--max-body-bytes", 2**30, text=True
        ),
        rate_limit=None if options.rate_limit is None else _rate(options.rate_limit),
    )
    if store is not None and options.allow_learning:
        raise InvalidInputError(
            "--allow-learning is for serving without tokens; with tokens, learning is granted to tokens made "
            "with --scope learn"
        )
    proxies = tuple(p.strip() for given in options.forwarded_allow_ips or () for p in given.split(","))
    return HttpSettings(store, guard, options.ssl_certfile, options.ssl_keyfile, proxies)


def _rate(text: str) -> float:
    from agent_il.errors import InvalidInputError

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value <= 1e6):
        raise InvalidInputError(f"--rate-limit must be a number of requests a second in (0, 1e6], got {text!r}")
    return value


@guarded
def serve(
    ctx: typer.Context,
    adapter: Annotated[
        str,
        typer.Argument(
            help="http (the REST API), or an adapter to run, e.g. mcp (see agent-il plugins).", show_default=False
        ),
    ],
    transport: Annotated[str, typer.Option("--transport", help="For an adapter: stdio, or http.")] = "stdio",
    host: Annotated[str | None, typer.Option("--host", help="Address to bind over HTTP (default 127.0.0.1).")] = None,
    port: Annotated[
        str | None, typer.Option("--port", metavar="INTEGER", help="Port over HTTP, 1-65535 (default 8765).")
    ] = None,
    allow_learning: Annotated[
        bool, typer.Option("--allow-learning", help="Without tokens: offer learn_intent (let agents teach).")
    ] = False,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Bind a non-loopback address without authentication.")
    ] = False,
    inbox: Annotated[
        bool, typer.Option("--inbox/--no-inbox", help="Keep messages classified as unknown in the inbox.")
    ] = True,
    max_examples: Annotated[
        str, typer.Option("--max-examples", metavar="INTEGER", help="Most examples one learn call may give.")
    ] = "100",
    max_text_chars: Annotated[
        str, typer.Option("--max-text-chars", metavar="INTEGER", help="Longest text to classify or learn.")
    ] = "1000",
    tokens: TokensFile = None,
    auth: Annotated[
        bool | None,
        typer.Option("--auth/--no-auth", help="Require bearer tokens (default: when the token file holds one)."),
    ] = None,
    rate_limit: Annotated[
        str | None, typer.Option("--rate-limit", metavar="FLOAT", help="Requests a second per client (429 above).")
    ] = None,
    max_body_bytes: Annotated[
        str | None, typer.Option("--max-body-bytes", metavar="INTEGER", help="Largest request body (413 above).")
    ] = None,
    allowed_host: Annotated[
        list[str] | None, typer.Option("--allowed-host", help="Host name clients may address (repeatable; '*' any).")
    ] = None,
    allowed_origin: Annotated[
        list[str] | None, typer.Option("--allowed-origin", help="Browser origin that may call (repeatable).")
    ] = None,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="TLS private key (PEM).")] = None,
    forwarded_allow_ips: Annotated[
        list[str] | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Proxy address or network whose X-Forwarded-For counts (repeatable; default: none).",
        ),
    ] = None,
    log_json: Annotated[bool, typer.Option("--log-json", help="Logs as one JSON object a line, on stderr.")] = False,
    home: Home = None,
) -> None:
    """Serve the workspace to agents and services: the REST API, or an adapter (an MCP server).

    Tools: classify and list intents; learning and corrections for tokens with --scope learn (or,
    without tokens, --allow-learning). HTTP binds 127.0.0.1; another address needs tokens.

    Example: `agent-il serve http --port 8765`, `agent-il serve mcp`, `agent-il serve mcp --transport http`
    """
    from agent_il import validation
    from agent_il.errors import InvalidInputError
    from agent_il.serving import logs
    from agent_il.serving.access import Access
    from agent_il.tools import adapters
    from agent_il.tools.adapters import DEFAULT_PORT, ServeOptions
    from agent_il.tools.models import ToolLimits

    port_n = None if port is None else validation.integer(port, "--port", 1, 65535, text=True)
    n_examples = validation.positive_int(max_examples, "--max-examples", MAX_EXAMPLES, text=True)
    n_chars = validation.positive_int(max_text_chars, "--max-text-chars", validation.MAX_TEXT_CHARS_LIMIT, text=True)
    plugin = None
    if adapter == REST:
        transport = REST
    else:
        plugin = adapters.load(adapter)
        if plugin.serve is None:
            raise InvalidInputError(f"adapter {adapter!r} is a library to import, not a server: {plugin.description}")
        if transport not in plugin.transports:
            raise InvalidInputError(
                f"adapter {adapter!r} serves over {', '.join(plugin.transports)}, not {transport!r}"
            )
    if transport == "stdio" and (host is not None or port_n is not None):
        raise InvalidInputError("--host and --port apply to --transport http; stdio talks over stdin/stdout")
    http_only = {"--tokens": tokens, "--auth/--no-auth": auth}
    http_only |= {"--rate-limit": rate_limit, "--ssl-certfile": ssl_certfile, "--max-body-bytes": max_body_bytes}
    http_only |= {"--ssl-keyfile": ssl_keyfile, "--allowed-host": allowed_host, "--allowed-origin": allowed_origin}
    http_only |= {"--forwarded-allow-ips": forwarded_allow_ips}
    http_only |= {"--allow-remote": allow_remote or None, "--log-json": log_json or None}
    if transport == "stdio" and (given := [k for k, v in http_only.items() if v is not None]):
        raise InvalidInputError(f"{', '.join(given)}: only over HTTP; stdio talks over stdin/stdout")
    host, port_n = host or "127.0.0.1", port_n or DEFAULT_PORT
    http = None
    if transport != "stdio":
        options = HttpOptions(
            tokens,
            auth,
            allow_remote,
            allow_learning,
            allowed_host,
            allowed_origin,
            rate_limit,
            max_body_bytes,
            ssl_certfile,
            ssl_keyfile,
            forwarded_allow_ips,
            log_json,
        )
        http = _http_settings(ctx, home, host, options)
    limits = ToolLimits(max_examples=n_examples, max_text_chars=n_chars)
    learner = open_learner(ctx, home)
    try:
        if http is None:
            from agent_il.tools.surface import IntentTools

            tools = IntentTools(learner, allow_learning=allow_learning, limits=limits, inbox=inbox)
            assert plugin is not None and plugin.serve is not None
            plugin.serve(tools, ServeOptions(transport=transport))
            return
        logs.configure(log_json)  # once the server is about to run: a refused command leaves logging alone
        access = Access(learner, http.tokens, allow_learning, limits, inbox)
        if learner.labels:  # load the model and the evidence now, not in the first caller's request
            learner.predict(["warm up"], inbox=False)
        if http.tokens is not None or allow_learning:
            learner.prepare_to_learn()
        _announce(adapter, http, host, port_n, allow_learning, log_json)
        if plugin is None:
            from agent_il.serving import rest, runner

            runner.run(rest.build_app(access, http.guard), host, port_n, http)
        else:
            assert plugin.serve is not None
            plugin.serve(access.offered(), ServeOptions(transport, host, port_n, http=http, access=access))
    finally:
        learner.close()


def _announce(adapter: str, http: HttpSettings, host: str, port: int, allow_learning: bool, log_json: bool) -> None:
    if http.tokens is not None:
        auth = f"bearer tokens from {http.tokens.path}; learning for tokens with --scope learn"
    else:
        auth = "no authentication; learning " + ("enabled" if allow_learning else "disabled (--allow-learning)")
    _say(f"serving {adapter} at {http.scheme}://{host}:{port}; {auth}", log_json)


def _say(message: str, log_json: bool, level: int = logging.INFO) -> None:
    """A line of the command itself on stderr, where the logs go: one JSON object under --log-json."""
    from agent_il.serving import logs

    typer.echo(logs.line(f"agent-il: {message}", log_json, level), err=True)
