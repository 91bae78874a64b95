"""What every agent-il HTTP server checks before a request reaches it, as one ASGI middleware:
the ``Host`` header against an allow-list (DNS rebinding: 421), any ``Origin`` against another
(a browser page: 403), a per-client rate limit (429), the body size (413, also for a chunked body
with no length). For the allowed origins it answers CORS (preflights, ``Access-Control-Allow-Origin``),
so a browser page of one may call. It also counts each refused or failed response (``agent_il_errors_total``) and
writes one access-log line per request, with the token's name, never the token."""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from agent_il.errors import InvalidInputError, WorkspaceError
from agent_il.serving.metrics import Metrics
from agent_il.serving.tokens import TokenStore, bearer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_MAX_BODY = 1_048_576  # bytes: 100 examples of 1,000 characters are about 0.1 MB of JSON
MAX_CLIENTS = 10_000  # clients the rate limiter remembers; the least recently seen is forgotten first
UNLIMITED_PATHS = ("/healthz", "/readyz")  # probes are never rate limited
CORS_METHODS = ("GET", "POST")
CORS_HEADERS = ("Authorization", "Content-Type")  # the request headers a browser page of an allowed origin may send

access_log = logging.getLogger("agent_il.serving.access")


@dataclass(frozen=True)
class GuardSettings:
    """``allowed_hosts``: host names (no port) a request may address, ``*`` any. ``allowed_origins``:
    browser origins that may call (``*`` any); a request with another ``Origin`` is refused.
    ``rate_limit``: requests per second per client address (None: no limit), with bursts of
    ``burst`` (default: one second's worth, at least 1)."""

    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY
    rate_limit: float | None = None
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.rate_limit is not None and not (math.isfinite(self.rate_limit) and self.rate_limit > 0):
            raise InvalidInputError(f"rate limit must be a positive number of requests a second, not {self.rate_limit}")
        if self.max_body_bytes < 1:
            raise InvalidInputError(f"max body size must be at least 1 byte, got {self.max_body_bytes}")

    def host_allowed(self, header: str | None) -> bool:
        if "*" in self.allowed_hosts:
            return True
        if not header:
            return False
        host = header.rsplit("]", 1)[0].lstrip("[") if header.startswith("[") else header.rsplit(":", 1)[0]
        return host.lower() in {h.lower() for h in self.allowed_hosts}

    def origin_allowed(self, header: str | None) -> bool:
        return header is None or "*" in self.allowed_origins or header.rstrip("/") in self.allowed_origins


class RateLimiter:
    """A token bucket per client: ``rate`` requests per second, bursts of ``burst``. It remembers at
    most ``max_clients`` clients (the least recently seen forgotten first), so memory stays bounded
    whatever the number of clients; a forgotten client starts again with a full bucket."""

    def __init__(self, rate: float, burst: int, max_clients: int = MAX_CLIENTS) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when)

    def allow(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)


class Guard:
    """The ASGI middleware; ``metrics`` counts refusals and failures; ``tokens`` names the token of
    each request in the access log (whichever server checks it: the REST API's or the MCP SDK's)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: GuardSettings,
        metrics: Metrics | None = None,
        tokens: TokenStore | None = None,
        *,
        cors_headers: tuple[str, ...] = CORS_HEADERS,
        cors_expose: tuple[str, ...] = (),
    ) -> None:
        if settings.allowed_origins:  # behind the Host/Origin/rate checks, in front of the app
            from starlette.middleware.cors import CORSMiddleware

            app = CORSMiddleware(
                app,  # type: ignore[arg-type]
                allow_origins=list(settings.allowed_origins),
                allow_methods=list(CORS_METHODS),
                allow_headers=list(cors_headers),
                expose_headers=list(cors_expose),
            )
        self.app, self.settings, self.metrics, self.tokens = app, settings, metrics, tokens
        rate = settings.rate_limit
        self.limiter = None if rate is None else RateLimiter(rate, settings.burst or max(1, math.ceil(rate)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is None:
                receive, refusal = await self._body(scope, receive)
            if refusal is not None:
                await _respond(sending, *refusal)
            else:
                await self.app(scope, receive, sending)
        finally:
            if self.metrics is not None:
                self.metrics.status(status[0])
            _log_access(scope, status[0], time.perf_counter() - start, self._token_name(scope))

    def _token_name(self, scope: Scope) -> str:
        """The name of the stored token the request carried, ``-`` for none (never the token)."""
        token = bearer(_headers(scope).get("authorization"))
        try:
            found = self.tokens.verify(token) if self.tokens is not None and token is not None else None
        except WorkspaceError:  # a damaged token file: the request was answered 503, the error logged
            return "-"
        return found.name if found is not None else "-"

    def _refusal(self, scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        headers = _headers(scope)
        if not self.settings.host_allowed(headers.get("host")):
            return 421, "this server does not answer for that Host", {}
        if not self.settings.origin_allowed(headers.get("origin")):
            return 403, "requests from that Origin are not allowed", {}
        if self.limiter is not None and scope["path"] not in UNLIMITED_PATHS:
            client = (scope.get("client") or ("unknown", 0))[0]
            if not self.limiter.allow(client):
                return 429, "rate limit exceeded; slow down", {"retry-after": "1"}
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.settings.max_body_bytes):
            return 413, f"request body over {self.settings.max_body_bytes} bytes", {}
        return None

    async def _body(self, scope: Scope, receive: Receive) -> tuple[Receive, tuple[int, str, dict[str, str]] | None]:
        """A body with no length is read here, up to the limit, and replayed to the app."""
        if "content-length" in _headers(scope) or scope["method"] in ("GET", "HEAD"):
            return receive, None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return receive, (400, "the client went away", {})
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.settings.max_body_bytes:
                return receive, (413, f"request body over {self.settings.max_body_bytes} bytes", {})
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), [False]

        async def replay() -> Message:
            if sent[0]:
                return await receive()
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay, None


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _respond(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _log_access(scope: Scope, status: int, seconds: float, token: str) -> None:
    client = (scope.get("client") or ("-", 0))[0]
    access_log.info(
        "%s %s %s %d %.4f",
        client,
        scope.get("method", "-"),
        scope.get("path", "-"),
        status,
        seconds,
        extra={
            "client": client,
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "seconds": round(seconds, 6),
            "token": token,
        },
    )
