"""A workspace in a directory with an embedded Chroma, owned by one process at a time::

state.json                       the commit point, replaced atomically
weights/<generation>-<id>.safetensors     what a predict needs of a generation
statistics/<generation>-<id>.safetensors  the ridge Gram matrix: the newest generation's only
snapshots/<name>.json            a snapshot's manifest (ids, not copies)
chroma/                          the embedded Chroma store
cache/                           text -> embedding caches (safe to delete)
.lock                            held by the process that has the workspace open
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from filelock import FileLock, Timeout

from agent_il.encoding.cache import cache_path
from agent_il.errors import DamagedError, WorkspaceError
from agent_il.storage import atomic
from agent_il.storage.base import STATE_FILE, Workspace, check_schema
from agent_il.storage.blobs import DirectoryBlobs, sealed, unsealed
from agent_il.storage.journal import Journal


class WorkspaceBusyError(WorkspaceError):
    """Another process has this embedded workspace open."""


class LocalWorkspace(Workspace):
    """A directory with an embedded Chroma. Embedded Chroma is not safe for two processes, so
    the process that opens the workspace holds ``.lock`` until it closes it; threads of that
    process share it and take turns to write."""

    shared = False
    _owners: ClassVar[dict[Path, list[Any]]] = {}  # root -> [file lock, open count, thread lock]
    _owners_lock = threading.Lock()

    def __init__(self, root: str | os.PathLike[str], wait: float = 0.0) -> None:
        self.root = Path(root).expanduser().resolve()
        self.location = str(self.root)
        self.state_path = self.root / STATE_FILE
        self.blobs = DirectoryBlobs(self.root)
        self.journal = Journal(self.blobs)
        self._wait = wait
        self._owned = False
        self._client: Any = None

    # The lock is taken on first use, so a missing workspace can be reported without creating it.
    def _own(self) -> None:
        if self._owned:
            return
        with self._owners_lock:
            entry = self._owners.get(self.root)
            if entry is None:
                lock = FileLock(str(self.root / ".lock"), timeout=self._wait, mode=0o600, thread_local=False)
                try:
                    lock.acquire()
                except Timeout:
                    raise WorkspaceBusyError(
                        f"{self.root} is open in another process ({self._holder()}). An embedded workspace "
                        "serves one process at a time: wait for it to finish (AGENT_IL_WAIT=SECONDS), or "
                        "share the knowledge base through a Chroma server (--chroma-url, see the README)"
                    ) from None
                try:
                    atomic.write_bytes(self.root / ".owner", f"{os.getpid()}\n".encode())
                except BaseException:
                    lock.release()  # a failed open (a full disk) must not keep the others out
                    raise
                entry = self._owners[self.root] = [lock, 0, threading.RLock()]
            entry[1] += 1
            self._owned = True

    def _holder(self) -> str:
        try:
            return f"pid {int((self.root / '.owner').read_text())}"
        except (OSError, ValueError):
            return "pid unknown"

    def close(self) -> None:
        self.forget_stores()
        if self._client is not None:  # Chroma caches a store per path: drop it, or a later open
            self._client.close()  # in this process would see it as it was, not as others left it
            self._client = None
        if not self._owned:
            return
        with self._owners_lock:
            entry = self._owners[self.root]
            entry[1] -= 1
            if entry[1] == 0:
                del self._owners[self.root]
                entry[0].release()
            self._owned = False

    @property
    def client(self) -> Any:  # type: ignore[override]
        if self._client is None:
            self._own()
            import chromadb
            from chromadb.config import Settings

            try:
                self._client = chromadb.PersistentClient(
                    path=str(self.root / "chroma"), settings=Settings(anonymized_telemetry=False)
                )
            except Exception:
                # Chroma keeps the half-made client of a store it could not open, per path; the
                # next try in this process (doctor's, after the failed open) must try again.
                from chromadb.api.client import SharedSystemClient

                SharedSystemClient.clear_system_cache()
                raise
        return self._client

    def exists(self) -> bool:
        return self.state_path.is_file()

    def set_aside_store(self) -> str:
        self.forget_stores()
        if self._client is not None:
            self._client.close()
            self._client = None
        aside = self.root / f"chroma.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        (self.root / "chroma").rename(aside)
        (self.root / "chroma").mkdir(mode=0o700)
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()  # the damaged store's half-made client, by path
        return str(aside)

    def create(self, state: dict[str, Any]) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"{self.root} exists and is not a directory")
        if self.root.is_dir() and any(self.root.iterdir()) and not self.exists():
            raise WorkspaceError(f"{self.root} is a non-empty directory that is not an agent-il workspace")
        for d in ("", "weights", "statistics", "snapshots", "journal", "chroma", "cache"):
            (self.root / d).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)  # an existing (empty) directory is made private too, not left 0755
        self._own()
        atomic.write_bytes(self.state_path, sealed(self.initial_state(state)).encode())

    def read_state(self) -> dict[str, Any]:
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WorkspaceError(f"no agent-il workspace at {self.root}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DamagedError(f"{self.state_path} is unreadable: {exc}") from exc
        return check_schema(unsealed(text, str(self.state_path)), str(self.state_path))

    def _publish(self, state: dict[str, Any]) -> None:
        atomic.write_bytes(self.state_path, sealed(state).encode(), commit_point=True)  # ids: no indentation

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        self._own()
        with self._owners[self.root][2]:
            yield

    def collection(self, store: str, space: str = "") -> str:
        return f"{store}.{space}" if space else store

    def clean_temporary(self, older_than: float = 0.0) -> int:
        return self.blobs.clean(["", "weights", "statistics", "snapshots", "journal"])

    def vacuum(self, ids: list[str]) -> dict[str, int]:
        """Chroma keeps an added record in its write-ahead log (text and embedding) until its
        index flushes, and deleted rows in SQLite's free pages: drop the log entries of ``ids``,
        rebuild the full-text index and VACUUM, so their bytes leave the files."""
        db = sqlite3.connect(self.root / "chroma" / "chroma.sqlite3", timeout=60)
        try:
            marks = ",".join("?" * len(ids))
            with db:
                log = db.execute(f"DELETE FROM embeddings_queue WHERE id IN ({marks})", ids).rowcount if ids else 0
                db.execute("INSERT INTO embedding_fulltext_search(embedding_fulltext_search) VALUES('optimize')")
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise WorkspaceError(f"cannot vacuum {self.root / 'chroma'}: {exc}") from exc
        finally:
            db.close()
        return {
            "chroma log": log,
            "hnsw spare bytes zeroed": sum(_zero_spare(p) for p in self.root.glob("chroma/*/data_level0.bin")),
        }

    def cache_path(self, model_id: str) -> Path:
        return cache_path(model_id, self.root / "cache")

    def cache_paths(self) -> list[Path]:
        return sorted((self.root / "cache").glob("*.sqlite"))

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())


def _zero_spare(data: Path) -> int:
    """Zero the slots past an HNSW index's element count: Chroma writes its whole capacity from
    memory it never cleared, so whatever the process had on its heap (texts included) can sit
    there. Returns the bytes zeroed (0 for a layout this does not know: left as it is)."""
    header = data.parent / "header.bin"
    raw = header.read_bytes() if header.is_file() else b""
    if len(raw) < 52:
        return 0
    _, capacity, count, size, label_at, _ = struct.unpack("<6Q", raw[4:52])  # after a 4-byte version
    if size == 0 or capacity * size != data.stat().st_size or label_at != size - 8 or count > capacity:
        return 0
    spare = (capacity - count) * size
    with open(data, "r+b") as f:
        f.seek(count * size)
        f.write(bytes(spare))
        f.flush()
        os.fsync(f.fileno())
    return spare
