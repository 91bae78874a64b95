"""One suite for every blob store behind the ``Blobs`` protocol (agent_il.storage.blobs).

Weights and snapshots are written once and read only after a commit names them, so every store
must round-trip bytes exactly, refuse a taken key under an exclusive put, list keys by prefix and
report a missing or damaged blob as a WorkspaceError. A new store passes by adding one entry to
``STORES``: a function that builds a :class:`BlobCase` for a test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_il.errors import WorkspaceError
from agent_il.storage import blobs as blobs_module
from agent_il.storage.blobs import Blobs, ChromaBlobs, DirectoryBlobs


@dataclass
class BlobCase:
    """A blob store under test, with the store-specific ways to break it."""

    blobs: Blobs
    damage: Callable[[str], None] | None  # corrupt a stored blob's bytes; None: the store has no checksum
    leave_unfinished: Callable[[str], None]  # what a writer killed mid-put leaves behind
    clean: Callable[[], int]  # remove what killed writers left; returns how many
    close: Callable[[], None] = lambda: None


def directory_case(request: pytest.FixtureRequest) -> BlobCase:
    root: Path = request.getfixturevalue("tmp_path") / "blobs"
    root.mkdir()
    store = DirectoryBlobs(root)

    def unfinished(key: str) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / f".{path.name}.abc123.tmp").write_bytes(b"half a blob")

    return BlobCase(store, None, unfinished, lambda: store.clean(["", "weights", "snapshots"]))


def _chroma_case(client: Any, close: Callable[[], None]) -> BlobCase:
    name = f"blobs-{uuid.uuid4().hex[:12]}"
    col = client.get_or_create_collection(name, embedding_function=None)
    store = ChromaBlobs(col)

    def damage(key: str) -> None:
        got = col.get(where={"$and": [{"kind": "part"}, {"key": key}]}, include=["metadatas"])
        meta = dict(got["metadatas"][0])
        data = str(meta["data"])
        meta["data"] = ("B" if data[0] == "A" else "A") + data[1:]  # still base64, other bytes
        col.update(ids=[got["ids"][0]], metadatas=[meta])

    def unfinished(key: str) -> None:
        meta = {"kind": "part", "key": key, "nonce": "deadbeef0000", "time": time.time() - 1, "data": "AAAA"}
        col.add(ids=[f"blob:{key}:deadbeef0000:0"], embeddings=[[0.0]], metadatas=[meta])

    def done() -> None:
        client.delete_collection(name)
        close()

    return BlobCase(store, damage, unfinished, lambda: store.clean(0.0), done)


def chroma_server_case(request: pytest.FixtureRequest) -> BlobCase:
    from agent_il.storage.chroma_server import connect

    return _chroma_case(connect(request.getfixturevalue("chroma_url")), lambda: None)


def chroma_embedded_case(request: pytest.FixtureRequest) -> BlobCase:
    import chromadb
    from chromadb.config import Settings

    path = request.getfixturevalue("tmp_path") / "chroma"
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    return _chroma_case(client, client.close)


STORES: dict[str, Callable[[pytest.FixtureRequest], BlobCase]] = {
    "directory": directory_case,
    "chroma-server": chroma_server_case,
    "chroma-embedded": chroma_embedded_case,
}


@pytest.fixture(params=sorted(STORES))
def case(request: pytest.FixtureRequest) -> Iterator[BlobCase]:
    built = STORES[request.param](request)
    yield built
    built.close()


@pytest.fixture
def store(case: BlobCase) -> Blobs:
    return case.blobs


PAYLOADS = {
    "empty": b"",
    "one byte": b"\x00",
    "binary": bytes(range(256)) * 3,
    "not a multiple of 3": b"agent-il" * 101,
}


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_put_get_round_trip(store: Blobs, payload: str) -> None:
    data = PAYLOADS[payload]
    assert store.put("weights/00000001-a.safetensors", data) is True
    assert store.get("weights/00000001-a.safetensors") == data
    assert store.size("weights/00000001-a.safetensors") == len(data)


def test_multi_part_blob_round_trips(store: Blobs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs_module, "PART_CHARS", 8)  # ChromaBlobs splits its base64 every 8 chars
    data = bytes(range(256)) * 2 + b"tail"
    store.put("snapshots/big.safetensors", data)
    assert store.get("snapshots/big.safetensors") == data
    assert store.size("snapshots/big.safetensors") == len(data)
    store.put("snapshots/exact.bin", b"123456")  # base64 of exactly one part
    assert store.get("snapshots/exact.bin") == b"123456"


def test_exclusive_put_refuses_a_taken_key(store: Blobs) -> None:
    assert store.put("snapshots/a.json", b"first", exclusive=True) is True
    assert store.put("snapshots/a.json", b"second", exclusive=True) is False
    assert store.get("snapshots/a.json") == b"first"
    assert store.put("snapshots/b.json", b"other", exclusive=True) is True


def test_keys_by_prefix(store: Blobs) -> None:
    for key in ("weights/00000001-a.safetensors", "weights/00000002-b.safetensors", "snapshots/s.json"):
        store.put(key, key.encode())
    assert store.keys("weights/") == ["weights/00000001-a.safetensors", "weights/00000002-b.safetensors"]
    assert store.keys("weights/00000002") == ["weights/00000002-b.safetensors"]
    assert store.keys("snapshots/s.json") == ["snapshots/s.json"]  # how snapshots test for one key
    assert store.keys("snapshots/t") == []
    assert store.keys("nothing/") == []


def test_keys_across_folders(store: Blobs) -> None:
    """The protocol's default prefix '' lists every key; a prefix need not end at a folder."""
    for key in ("weights/00000001-a.safetensors", "snapshots/s.json"):
        store.put(key, b"x")
    assert store.keys("wei") == ["weights/00000001-a.safetensors"]
    assert store.keys() == ["snapshots/s.json", "weights/00000001-a.safetensors"]


def test_delete(store: Blobs) -> None:
    store.put("weights/00000001-a.safetensors", b"gone soon")
    store.put("weights/00000002-b.safetensors", b"stays")
    store.delete("weights/00000001-a.safetensors")
    assert store.keys("weights/") == ["weights/00000002-b.safetensors"]
    with pytest.raises(WorkspaceError):
        store.get("weights/00000001-a.safetensors")
    store.delete("weights/00000001-a.safetensors")  # deleting twice is harmless (garbage collection races)
    assert store.get("weights/00000002-b.safetensors") == b"stays"


def test_a_deleted_key_can_be_written_again(store: Blobs) -> None:
    store.put("snapshots/a.json", b"old")
    store.delete("snapshots/a.json")
    assert store.put("snapshots/a.json", b"new", exclusive=True) is True
    assert store.get("snapshots/a.json") == b"new"


def test_age(store: Blobs) -> None:
    store.put("snapshots/a.json", b"x")
    assert 0.0 <= store.age("snapshots/a.json") < 60.0


def test_missing_key_raises_workspace_error(store: Blobs) -> None:
    with pytest.raises(WorkspaceError):
        store.get("weights/00000009-missing.safetensors")


@pytest.mark.parametrize("what", ["age", "size"])
def test_missing_key_metadata_raises_workspace_error(store: Blobs, what: str) -> None:
    with pytest.raises(WorkspaceError):
        getattr(store, what)("weights/00000009-missing.safetensors")


def test_damaged_data_is_detected(case: BlobCase, monkeypatch: pytest.MonkeyPatch) -> None:
    if case.damage is None:
        pytest.skip("this store keeps no checksum (a file is written atomically and read as is)")
    monkeypatch.setattr(blobs_module, "PART_CHARS", 8)
    case.blobs.put("weights/00000001-a.safetensors", b"weights that must not change")
    case.damage("weights/00000001-a.safetensors")
    with pytest.raises(WorkspaceError, match=r"checksum|damaged"):
        case.blobs.get("weights/00000001-a.safetensors")


def test_unfinished_writes_are_invisible_and_cleaned(case: BlobCase) -> None:
    case.blobs.put("weights/00000001-a.safetensors", b"finished")
    case.leave_unfinished("weights/00000002-b.safetensors")
    assert case.blobs.keys("weights/") == ["weights/00000001-a.safetensors"]
    with pytest.raises(WorkspaceError):
        case.blobs.get("weights/00000002-b.safetensors")
    assert case.clean() >= 1
    assert case.clean() == 0
    assert case.blobs.get("weights/00000001-a.safetensors") == b"finished"
