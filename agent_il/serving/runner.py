"""Running an HTTP server (the REST API, or the MCP adapter's app): its settings as the command line
gives them, and uvicorn started with them (TLS when given a certificate, logs through
:mod:`agent_il.serving.logs`, no access log of uvicorn's own: the guard writes one without tokens)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_il.errors import InvalidInputError
from agent_il.serving.guard import GuardSettings
from agent_il.serving.tokens import TokenStore

MAX_CONNECTIONS = 1000  # concurrent connections before uvicorn answers 503: bounded memory under a flood
log = logging.getLogger("agent_il.serving")


@dataclass(frozen=True)
class HttpSettings:
    """How an agent-il HTTP server runs: ``tokens`` None means authentication is off.
    ``forwarded_allow_ips``: the proxies (addresses, networks, ``*``) whose ``X-Forwarded-For`` /
    ``-Proto`` count; none by default, so no client can choose the address it is rate limited by."""

    tokens: TokenStore | None = None
    guard: GuardSettings = field(default_factory=GuardSettings)
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    forwarded_allow_ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for proxy in self.forwarded_allow_ips:
            _check_proxy(proxy)
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise InvalidInputError("give both --ssl-certfile and --ssl-keyfile, or neither")
        for path in (self.ssl_certfile, self.ssl_keyfile):
            if path is not None and not Path(path).is_file():
                raise InvalidInputError(f"no such file: {path}")

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_certfile else "http"


def _check_proxy(value: str) -> None:
    """An entry of ``--forwarded-allow-ips`` as uvicorn reads it: ``*``, an IP address or a network."""
    import ipaddress

    if value == "*":
        return
    try:
        ipaddress.ip_network(value)
    except ValueError:
        raise InvalidInputError(
            f"--forwarded-allow-ips: {value!r} is not an IP address, a network (10.0.0.0/8) or '*'"
        ) from None


def _server(app: Any, host: str, port: int, settings: HttpSettings) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=5,
        proxy_headers=bool(settings.forwarded_allow_ips),  # uvicorn's default trusts any local client
        forwarded_allow_ips=list(settings.forwarded_allow_ips) or None,
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
    )
    return uvicorn.Server(config)


def run(app: Any, host: str, port: int, settings: HttpSettings) -> None:
    """Serve ``app`` until interrupted."""
    _server(app, host, port, settings).run()


@contextlib.contextmanager
def background(app: Any, settings: HttpSettings | None = None, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` on ``port`` (0: a free one) of ``host`` from a thread of this process (tests,
    benchmarks); yields its base URL and stops it on exit."""
    settings = settings or HttpSettings()
    server = _server(app, host, port, settings)
    thread = threading.Thread(target=server.run, name="agent-il-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the HTTP server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{settings.scheme}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
