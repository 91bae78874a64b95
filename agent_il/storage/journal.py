"""A second copy of every record a commit adds, so that a workspace whose Chroma store is damaged
can be rebuilt: snapshots name records without copying them, and Chroma holds the only other copy.

An entry is ``journal/<generation>-<id>.json``: the records one commit added, per store (ids,
texts, metadata, the embeddings as float32 bytes in base64), sealed with a checksum. Entries are
written once; an erasure rewrites the entries that hold an erased text.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Collection

import numpy as np

from agent_il.errors import DamagedError
from agent_il.memory.records import Records
from agent_il.storage.blobs import Blobs, sealed, unsealed

PREFIX = "journal/"


class Journal:
    def __init__(self, blobs: Blobs) -> None:
        self.blobs = blobs

    def write(self, generation: int, added: dict[str, Records], space: str = "") -> str | None:
        """Keep a copy of the records of the commit of ``generation`` (to the stores of
        ``space``); returns its key."""
        stores = {store: _encoded(recs) for store, recs in added.items() if recs.ids}
        if not stores:
            return None
        key = f"{PREFIX}{generation:08d}-{uuid.uuid4().hex[:8]}.json"
        self.blobs.put(key, _sealed(stores, space))
        return key

    def delete(self, key: str) -> None:
        self.blobs.delete(key)

    def entries(self) -> list[str]:
        return self.blobs.keys(PREFIX)

    def read(self, key: str) -> dict[str, Records]:
        """The records of entry ``key``, per store (checked against its checksum)."""
        return self.read_entry(key)[1]

    def read_entry(self, key: str) -> tuple[str, dict[str, Records]]:
        """The space and the records of entry ``key``, per store (checked against its checksum)."""
        try:
            text = self.blobs.get(key).decode("utf-8")
        except ValueError as exc:
            raise DamagedError(f"journal entry {key} is damaged: {exc}") from exc
        entry = unsealed(text, f"journal entry {key}")
        return str(entry.get("space", "")), {store: _decoded(part) for store, part in entry["stores"].items()}

    def purge(self, ids: Collection[str]) -> int:
        """Take the records ``ids`` out of every entry (an erasure); returns how many entries changed."""
        wanted, changed = set(ids), 0
        for key in self.entries():
            space, stores = self.read_entry(key)
            if not any(wanted & set(recs.ids) for recs in stores.values()):
                continue
            kept = {s: r.take([i for i, rid in enumerate(r.ids) if rid not in wanted]) for s, r in stores.items()}
            if any(r.ids for r in kept.values()):
                parts = {store: _encoded(recs) for store, recs in kept.items() if recs.ids}
                self.blobs.put(key, _sealed(parts, space))
            else:
                self.blobs.delete(key)
            changed += 1
        return changed


def _sealed(stores: dict[str, dict[str, object]], space: str) -> bytes:
    return sealed({"stores": stores, **({"space": space} if space else {})}).encode()


def _encoded(recs: Records) -> dict[str, object]:
    x = np.ascontiguousarray(recs.x, dtype=np.float32)
    return {
        "ids": recs.ids,
        "texts": recs.texts,
        "metadatas": recs.metadatas,
        "dim": int(x.shape[1]),
        "x": base64.b64encode(x.tobytes()).decode("ascii"),
    }


def _decoded(part: dict[str, object]) -> Records:
    x = np.frombuffer(base64.b64decode(str(part["x"])), dtype=np.float32).reshape(-1, int(part["dim"]))  # type: ignore[call-overload]
    return Records(list(part["ids"]), x.copy(), list(part["texts"]), list(part["metadatas"]))  # type: ignore[call-overload]
