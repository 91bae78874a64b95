"""What an agent-framework adapter distribution registers, and how the installed ones are found.

Adapters register an :class:`Adapter` under the ``agent_il.adapters`` entry-point group; the core
never imports their frameworks. This module imports neither pydantic nor numpy (the tool surface is
only named for type checkers), so ``agent-il plugins`` lists adapters without loading the core.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from agent_il.errors import InvalidInputError

if TYPE_CHECKING:
    from agent_il.tools.surface import IntentTools

ADAPTER_GROUP = "agent_il.adapters"  # entry-point group under which adapter distributions register
DEFAULT_PORT = 8765  # not 8000: that is where `chroma run` listens by default
INSTALL_HINT = "pip install -e plugins/mcp -e plugins/langchain -e plugins/openai_agents (from a checkout)"


@dataclass(frozen=True)
class ServeOptions:
    transport: str  # one of the adapter's transports
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # Over HTTP, from `agent-il serve`: agent_il.serving.runner.HttpSettings (tokens, limits, TLS) and
    # agent_il.serving.access.Access (each call's tools by its token's scope). Typed loosely: this
    # module sits below agent_il.serving.
    http: Any = None
    access: Any = None


@dataclass(frozen=True)
class Adapter:
    """What an adapter distribution registers under the ``agent_il.adapters`` entry-point group.
    ``serve`` is given for adapters that run a server (``agent-il serve NAME``); library adapters
    (a toolkit to import) leave it out. Its module should import its framework lazily, so that
    ``agent-il plugins`` stays fast."""

    name: str
    description: str
    transports: tuple[str, ...] = ()
    serve: Callable[[IntentTools, ServeOptions], None] | None = field(default=None, compare=False)


def installed() -> list[EntryPoint]:
    """The adapters' entry points, by name: found without loading any of them."""
    return sorted(entry_points(group=ADAPTER_GROUP), key=lambda ep: ep.name)


def describe(ep: EntryPoint) -> dict[str, Any]:
    """One installed adapter; a broken one is listed with its error rather than breaking the list."""
    info: dict[str, Any] = {
        "name": ep.name,
        "distribution": ep.dist.name if ep.dist else None,
        "version": ep.dist.version if ep.dist else None,
        "entry_point": ep.value,
    }
    try:
        adapter = ep.load()
        if not isinstance(adapter, Adapter):
            raise TypeError(f"{ep.value} is a {type(adapter).__name__}, not an agent_il.tools.adapters.Adapter")
    except Exception as exc:  # a third-party plugin may fail in any way; report it, keep listing
        return {**info, "description": None, "serve": False, "transports": [], "error": f"{exc}"}
    return {
        **info,
        "description": adapter.description,
        "serve": adapter.serve is not None,
        "transports": list(adapter.transports),
        "error": None,
    }


def load(name: str) -> Adapter:
    """The installed adapter ``name``; :class:`InvalidInputError` (naming what is installed) when
    it is missing, fails to load, or is not an :class:`Adapter`."""
    found = [ep for ep in installed() if ep.name == name]
    if not found:
        names = ", ".join(ep.name for ep in installed()) or "none"
        raise InvalidInputError(f"no adapter named {name!r} is installed (installed: {names}); {INSTALL_HINT}")
    try:
        adapter = found[0].load()
    except Exception as exc:
        raise InvalidInputError(f"adapter {name!r} failed to load: {exc}") from None
    if not isinstance(adapter, Adapter):
        raise InvalidInputError(f"adapter {name!r} ({found[0].value}) is not an agent_il.tools.adapters.Adapter")
    return adapter


def is_wildcard(host: str) -> bool:
    """Whether binding ``host`` listens on every address of the machine."""
    return host in ("0.0.0.0", "::", "[::]")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps a server reachable from this machine only (servers have no
    authentication, so anything else needs the operator's explicit consent)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
