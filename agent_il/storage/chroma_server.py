"""A workspace on a Chroma server (``chroma run``), shared by many agent processes and hosts.

Everything lives in the server, in collections named after the workspace: ``NAME.examples``,
``NAME.exemplars``, ``NAME.holdout``, ``NAME.inbox`` (records; ``NAME.examples.SPACE`` and so on
after a migration to another encoder) and ``NAME.meta`` (versioned state records and blobs).
Each commit adds the record ``head:<generation>``; Chroma keeps the first record added under an
id, so adding it is a compare-and-set: the writer reads the record back and, if another writer's
token is there, it lost the race, undoes its additions and recomputes on top of the
winner's state (optimistic concurrency, no lock to leak when a process dies). Readers take the
highest generation, so they see a learn whole or not at all, and pick up new ones on their next
call without a restart.

Chroma's server does not enforce authentication in the version we use: keep it on 127.0.0.1, or
behind a proxy that authenticates (see the README).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from agent_il.encoding.cache import cache_path
from agent_il.errors import DamagedError, InvalidInputError, WorkspaceError
from agent_il.storage.base import Conflict, Workspace, check_schema
from agent_il.storage.blobs import ChromaBlobs, sealed, unsealed

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,62}[A-Za-z0-9]")
KEEP_HEADS = 8  # older head records are deleted; a writer that far behind notices (see _publish)
DEFAULT_TENANT = "default_tenant"
DEFAULT_DATABASE = "default_database"


def _head_id(generation: int) -> str:
    return f"head:{generation:012d}"


def check_workspace_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInputError(
            f"bad workspace name {name!r}: use 3-64 letters, digits, '_' or '-', starting and ending "
            "with a letter or digit"
        )
    return name


@contextlib.contextmanager
def local_server(path: str | os.PathLike[str], port: int | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Run ``chroma run`` on 127.0.0.1 for as long as the block runs; yields its URL. For tests,
    benchmarks and trying server mode on one machine."""
    import shutil
    import socket
    import subprocess
    import sys
    import time

    import httpx

    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    exe = shutil.which("chroma", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    if exe is None:
        raise WorkspaceError("the `chroma` command (from the chromadb package) is not installed")
    cmd = [exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise WorkspaceError(f"`chroma run` did not start on {url}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def connect(url: str, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> Any:
    """An HTTP client for ``url`` (http[s]://host:port), creating the database if needed."""
    import chromadb
    from chromadb.config import Settings

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInputError(f"bad Chroma URL {url!r}: expected http://HOST:PORT")
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    settings = Settings(anonymized_telemetry=False)
    ssl = parsed.scheme == "https"
    try:
        admin = chromadb.AdminClient(
            Settings(
                chroma_api_impl="chromadb.api.fastapi.FastAPI",
                chroma_server_host=parsed.hostname,
                chroma_server_http_port=port,
                chroma_server_ssl_enabled=ssl,
                anonymized_telemetry=False,
            )
        )
        try:
            admin.get_tenant(tenant)
        except Exception:
            admin.create_tenant(tenant)
        try:
            admin.get_database(database, tenant=tenant)
        except Exception:
            admin.create_database(database, tenant=tenant)
        return chromadb.HttpClient(
            host=parsed.hostname, port=port, ssl=ssl, tenant=tenant, database=database, settings=settings
        )
    except (InvalidInputError, WorkspaceError):
        raise
    except Exception as exc:
        raise WorkspaceError(f"cannot reach the Chroma server at {url}: {exc}") from exc


class ServerWorkspace(Workspace):
    shared = True

    def __init__(
        self, url: str, name: str = "default", tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE
    ) -> None:
        self.name = check_workspace_name(name)
        self.url = url
        self.location = f"{url.rstrip('/')}/{tenant}/{database}/{name}"
        self.client = connect(url, tenant, database)
        self._meta = self.client.get_or_create_collection(f"{name}.meta", embedding_function=None)
        self.blobs = ChromaBlobs(self._meta)

    def collection(self, store: str, space: str = "") -> str:
        return f"{self.name}.{store}.{space}" if space else f"{self.name}.{store}"

    def _generations(self) -> list[int]:
        got = self._meta.get(where={"kind": "head"}, include=[])
        return sorted(int(i.split(":", 1)[1]) for i in got["ids"])

    def exists(self) -> bool:
        return bool(self._generations())

    def create(self, state: dict[str, Any]) -> None:
        try:
            self._publish(self.initial_state(state))
        except Conflict:
            pass  # another process created it at the same moment; the caller checks the settings

    def read_state(self) -> dict[str, Any]:
        for _ in range(5):  # the newest head may be garbage-collected between the two calls
            generations = self._generations()
            if not generations:
                raise WorkspaceError(f"no agent-il workspace at {self.location}")
            got = self._meta.get(ids=[_head_id(generations[-1])], include=["metadatas"])
            if got["ids"]:
                try:
                    text = str(got["metadatas"][0]["state"])
                except KeyError as exc:
                    raise DamagedError(f"{self.location}: head record is unreadable: {exc}") from exc
                return check_schema(unsealed(text, f"{self.location}: the head record"), self.location)
        raise WorkspaceError(f"{self.location}: the state changed too fast to read")

    def latest_generation(self) -> int:
        generations = self._generations()
        return generations[-1] if generations else -1

    def _publish(self, state: dict[str, Any]) -> None:
        generation = int(state["generation"])
        token = uuid.uuid4().hex
        meta = {"kind": "head", "generation": generation, "writer": token, "state": sealed(state)}
        self._meta.add(ids=[_head_id(generation)], embeddings=[[0.0]], metadatas=[meta])
        got = self._meta.get(ids=[_head_id(generation)], include=["metadatas"])
        if not got["ids"] or got["metadatas"][0].get("writer") != token:
            raise Conflict(f"{self.location}: generation {generation} was committed by another writer")
        generations = self._generations()
        if generations[-1] > generation:  # so far behind that our generation had been collected: undo
            self._meta.delete(ids=[_head_id(generation)])
            raise Conflict(f"{self.location}: generation {generation} is stale")
        old = [g for g in generations if g <= generation - KEEP_HEADS]
        if old:
            self._meta.delete(ids=[_head_id(g) for g in old])

    def close(self) -> None:
        """Nothing to release: a server workspace is never owned by one process."""

    def clean_temporary(self, older_than: float = 0.0) -> int:
        return self.blobs.clean(older_than)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def cache_path(self, model_id: str) -> Path:
        return cache_path(model_id)

    def size_bytes(self) -> int:
        return sum(self.blobs.size(k) for k in self.blobs.keys())
