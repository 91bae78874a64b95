"""Immutable named byte strings: head weights and snapshot files, on disk or in a Chroma server.

Keys look like paths (``weights/00000003-1f2e.safetensors``). A blob is written once and only
read after a commit record names it, so a reader never sees half of one: on disk each blob is
one atomic file; in Chroma it is a run of records (one HTTP request may carry a few MB) whose
first part carries the count and SHA-256 of the whole, checked on every read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from agent_il.errors import DamagedError, WorkspaceError
from agent_il.storage import atomic

PART_CHARS = 3_000_000  # base64 characters per Chroma record, well under the server's request limit


class Blobs(Protocol):
    def put(self, key: str, data: bytes, exclusive: bool = False) -> bool:
        """Store ``data`` under ``key``; with ``exclusive``, only if the key is free (returns
        whether it was stored). Without it, the key must be one nobody else writes."""
        ...

    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def keys(self, prefix: str = "") -> list[str]: ...
    def age(self, key: str) -> float: ...
    def size(self, key: str) -> int: ...

    def stamp(self, key: str) -> str:
        """A value that changes whenever the blob under ``key`` does, cheaper than reading it."""
        ...


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sealed(doc: dict[str, Any]) -> str:
    """``doc`` as JSON text ending in a field ``checksum``, the SHA-256 of the text without it: a
    flipped bit can leave valid JSON (an id, a number), and only a checksum tells."""
    body = json.dumps(doc, ensure_ascii=False)
    mark = f'"checksum": "{sha256(body.encode())}"}}'
    return body[:-1] + (mark if body == "{}" else ", " + mark)


_SEAL = re.compile(r'(, )?"checksum": "([0-9a-f]{64})"\}\s*$')
_SEAL_TAIL = 4096  # the mark and any whitespace after it


def unsealed(text: str, where: str) -> dict[str, Any]:
    """The document :func:`sealed` wrote, checked against its checksum by hashing the text as
    read (one written before checksums were is taken as it is)."""
    # Searched in the tail only: a search from every position of a state's hundreds of KB took 15 ms.
    found = _SEAL.search(text, max(0, len(text) - _SEAL_TAIL))
    body = text if found is None else text[: found.start()] + "}"
    if found is not None and sha256(body.encode()) != found.group(2):
        raise DamagedError(f"{where} is damaged: its content does not match its checksum")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise DamagedError(f"{where} is damaged: {exc}") from exc
    if not isinstance(doc, dict) or (found is None and "checksum" in doc):
        raise DamagedError(f"{where} is damaged: not the JSON object written")
    return doc


class DirectoryBlobs:
    """Blobs as files under a workspace directory (private permissions, atomic writes)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes, exclusive: bool = False) -> bool:
        path = self._path(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if exclusive and path.exists():
            return False
        atomic.write_bytes(path, data)
        return True

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise WorkspaceError(f"cannot read {self._path(key)}: {exc.strerror or exc}") from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> list[str]:
        """Every blob whose key starts with ``prefix`` (temp files of writes in progress aside)."""
        folder = self._path(prefix.rpartition("/")[0])
        if not folder.is_dir():
            return []
        found = (p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file())
        return sorted(
            k for k in found if k.startswith(prefix) and not any(part.startswith(".") for part in k.split("/"))
        )

    def _stat(self, key: str) -> os.stat_result:
        try:
            return self._path(key).stat()
        except OSError as exc:
            raise WorkspaceError(f"cannot read {self._path(key)}: {exc.strerror or exc}") from exc

    def age(self, key: str) -> float:
        return time.time() - self._stat(key).st_mtime

    def size(self, key: str) -> int:
        return self._stat(key).st_size

    def stamp(self, key: str) -> str:
        st = self._stat(key)  # a write renames a new file in: a new inode
        return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"

    def clean(self, folders: Iterable[str]) -> int:
        """Remove temp files of writes that a crash interrupted; returns how many."""
        return sum(len(atomic.remove_stale_temp_files(self._path(f))) for f in folders if self._path(f).is_dir())


class ChromaBlobs:
    """Blobs as base64 parts in the metadata of a Chroma collection's records (Chroma has no
    binary column; metadata, unlike documents, is not full-text indexed). The parts go first and
    a small info record (count, size, SHA-256) last: a blob without one was never finished."""

    def __init__(self, collection: Any) -> None:
        self._col = collection

    def put(self, key: str, data: bytes, exclusive: bool = False) -> bool:
        # Chroma keeps the first record added under an id: the info record decides which writer's
        # parts (named by its nonce) are the blob, so racing writers of one key cannot mix.
        if exclusive and self._col.get(ids=[f"info:{key}"], include=[])["ids"]:
            return False
        nonce = uuid.uuid4().hex[:12]
        text = base64.b64encode(data).decode("ascii")
        parts = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)]
        now = time.time()
        for i, chunk in enumerate(parts):
            meta = {"kind": "part", "key": key, "nonce": nonce, "time": now, "data": chunk}
            self._col.add(ids=[f"blob:{key}:{nonce}:{i}"], embeddings=[[0.0]], metadatas=[meta])
        info = {"kind": "blob", "key": key, "nonce": nonce, "parts": len(parts), "sha256": sha256(data)}
        self._col.add(ids=[f"info:{key}"], embeddings=[[0.0]], metadatas=[{**info, "bytes": len(data), "time": now}])
        if self._info(key)["nonce"] != nonce:
            self._col.delete(where={"nonce": nonce})
            if exclusive:
                return False
            raise WorkspaceError(f"blob {key!r} was written by two writers at once")
        return True

    def _info(self, key: str) -> dict[str, Any]:
        got = self._col.get(ids=[f"info:{key}"], include=["metadatas"])
        if not got["ids"]:
            raise WorkspaceError(f"blob {key!r} is missing from the Chroma server")
        return dict(got["metadatas"][0])

    def get(self, key: str) -> bytes:
        info = self._info(key)
        ids = [f"blob:{key}:{info['nonce']}:{i}" for i in range(int(info["parts"]))]
        got = self._col.get(ids=ids, include=["metadatas"]) if ids else {"ids": [], "metadatas": []}
        by_id = dict(zip(got["ids"], got["metadatas"]))
        try:
            data = base64.b64decode("".join(str(by_id[i]["data"]) for i in ids), validate=True)
        except (KeyError, ValueError) as exc:
            raise WorkspaceError(f"blob {key!r} is incomplete or damaged on the Chroma server") from exc
        if sha256(data) != info["sha256"]:
            raise WorkspaceError(f"blob {key!r} does not match its checksum")
        return data

    def delete(self, key: str) -> None:
        self._col.delete(ids=[f"info:{key}"])  # unreadable from here on; the parts are cleanup
        self._col.delete(where={"key": key})

    def clean(self, older_than: float) -> int:
        """Delete parts no info record names (a killed writer's), once older than ``older_than``
        seconds, so that a write in progress elsewhere is left alone. Returns how many."""
        live = {str(m["nonce"]) for m in self._col.get(where={"kind": "blob"}, include=["metadatas"])["metadatas"]}
        old = {"$and": [{"kind": "part"}, {"time": {"$lt": time.time() - older_than}}]}
        stale = [i for i in self._col.get(where=old, include=[])["ids"] if i.split(":")[-2] not in live]
        if stale:
            self._col.delete(ids=stale)
        return len(stale)

    def keys(self, prefix: str = "") -> list[str]:
        got = self._col.get(where={"kind": "blob"}, include=["metadatas"])
        return sorted(str(m["key"]) for m in got["metadatas"] if str(m["key"]).startswith(prefix))

    def age(self, key: str) -> float:
        return time.time() - float(self._info(key)["time"])

    def size(self, key: str) -> int:
        return int(self._info(key)["bytes"])

    def stamp(self, key: str) -> str:
        info = self._info(key)  # one small record, not the parts
        return f"{info['nonce']}:{info['sha256']}"
