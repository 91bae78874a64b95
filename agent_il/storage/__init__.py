"""Where a workspace lives: a directory with an embedded Chroma, or a Chroma server."""

from __future__ import annotations

import os

from agent_il.errors import InvalidInputError
from agent_il.storage.base import Workspace


def open_workspace(
    path: str | os.PathLike[str] | None = None,
    *,
    chroma_url: str | None = None,
    name: str = "default",
    tenant: str | None = None,
    database: str | None = None,
    wait: float = 0.0,
) -> Workspace:
    """The workspace ``name`` on the Chroma server at ``chroma_url`` (shared by every process
    that names it), else the directory ``path`` (one process at a time; another one waits
    ``wait`` seconds). The one place that chooses between the two backends."""
    if chroma_url is not None:
        from agent_il.storage.chroma_server import DEFAULT_DATABASE, DEFAULT_TENANT, ServerWorkspace

        return ServerWorkspace(chroma_url, name, tenant or DEFAULT_TENANT, database or DEFAULT_DATABASE)
    if path is None:
        raise InvalidInputError("give a workspace directory, or a Chroma server URL")
    from agent_il.storage.local import LocalWorkspace

    return LocalWorkspace(path, wait=wait)


__all__ = ["Workspace", "open_workspace"]
