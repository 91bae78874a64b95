"""Running an HTTP server (the REST API, or the MCP adapter's app): its settings as the command line
gives them, and uvicorn started with them (TLS when given a certificate, logs through
:mod:`agent_il.serving.logs`, no access log of uvicorn's own: the guard writes one without tokens)."""

from __future__ import annotations

import logging
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
    """How an agent-il HTTP server runs: ``tokens`` None means authentication is off."""

    tokens: TokenStore | None = None
    guard: GuardSettings = field(default_factory=GuardSettings)
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def __post_init__(self) -> None:
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise InvalidInputError("give both --ssl-certfile and --ssl-keyfile, or neither")
        for path in (self.ssl_certfile, self.ssl_keyfile):
            if path is not None and not Path(path).is_file():
                raise InvalidInputError(f"no such file: {path}")

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_certfile else "http"


def run(app: Any, host: str, port: int, settings: HttpSettings) -> None:
    """Serve ``app`` until interrupted."""
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
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
    )
    uvicorn.Server(config).run()
