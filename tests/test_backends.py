"""One suite for every workspace backend (agent_il.storage), opened the way the learner opens it.

A backend deals in JSON state dicts and tensors: it publishes generation 0, commits a new
generation whose weights blob reads back bit-exact, collects old weights and, where other
processes may write, turns a race for one generation into exactly one :class:`Conflict`. A new
backend passes by adding one entry to ``BACKENDS``: a function that returns how to open one
workspace (every call to it is a new handle on the same workspace, as another process would get).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

from agent_il.errors import WorkspaceError
from agent_il.storage import open_workspace
from agent_il.storage.base import KEEP_GENERATIONS, SCHEMA_VERSION, Conflict, Workspace, weights_generation

Opener = Callable[[], Workspace]


def local_backend(request: pytest.FixtureRequest) -> Opener:
    root = request.getfixturevalue("tmp_path") / "kb"
    return lambda: open_workspace(root)


def server_backend(request: pytest.FixtureRequest) -> Opener:
    url, name = request.getfixturevalue("chroma_url"), request.getfixturevalue("server_name")
    return lambda: open_workspace(chroma_url=url, name=name)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Opener]] = {
    "local": local_backend,
    "server": server_backend,
}


@pytest.fixture(params=sorted(BACKENDS))
def opener(request: pytest.FixtureRequest) -> Iterator[Opener]:
    """Opens handles on one fresh workspace; closes each of them afterwards."""
    make, handles = BACKENDS[request.param](request), []

    def open_one() -> Workspace:
        handles.append(make())
        return handles[-1]

    yield open_one
    for ws in handles:
        ws.close()
    if handles and handles[0].shared:  # leave the shared test server as we found it
        client = handles[0].client
        for col in client.list_collections():
            if col.name.startswith(f"{handles[0].collection('')}"):
                client.delete_collection(col.name)


@pytest.fixture
def ws(opener: Opener) -> Workspace:
    return opener()


def minimal_state() -> dict[str, Any]:
    """What the learner publishes for a new workspace (``_new_state``), before ``initial_state``."""
    return {
        "created": "2024-01-01T00:00:00+00:00",
        "updated": "2024-01-01T00:00:00+00:00",
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "dim": None,
        "strategy": {"name": "ridge", "config": {}},
        "memory": {"per_class": 20, "total": None, "selection": "herding"},
        "auto_snapshots": 10,
        "labels": [],
        "tasks": [],
        "exemplars": {},
        "holdout": {},
        "evaluation": [],
    }


def created(ws: Workspace) -> dict[str, Any]:
    ws.create(minimal_state())
    return ws.read_state()


def sample_tensors(size: int = 64) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(size)
    special = torch.tensor([float("nan"), float("inf"), -0.0, 1e-45])  # bit patterns that must survive
    return {
        "weights": torch.randn(size, 8, generator=gen),
        "gram_upper": torch.randn(size, dtype=torch.float64, generator=gen),
        "special": special,
        "half": torch.randn(5, generator=gen).to(torch.float16),
        "tasks_seen": torch.tensor(3),
    }


def same_bits(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Written (torch) and read back (numpy: a predict reads without torch): same dtypes, shapes, bits."""

    def raw(t: Any) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(t))

    return (
        a.keys() == b.keys()
        and all(raw(a[k]).dtype == raw(b[k]).dtype and raw(a[k]).shape == raw(b[k]).shape for k in a)
        and all(raw(a[k]).tobytes() == raw(b[k]).tobytes() for k in a)
    )


def test_create_and_read_state(ws: Workspace) -> None:
    assert not ws.exists()
    with pytest.raises(WorkspaceError):
        ws.read_state()
    ws.create(minimal_state())
    assert ws.exists()
    state = ws.read_state()
    assert state == {**minimal_state(), "schema": SCHEMA_VERSION, "generation": 0, "weights": None}
    assert ws.latest_generation() == 0


def test_another_handle_sees_the_workspace(opener: Opener) -> None:
    first = opener()
    state = first.commit(created(first), sample_tensors())
    again = opener()
    assert again.exists()
    assert again.read_state() == state
    assert same_bits(again.read_tensors(state), sample_tensors())


def test_commit_advances_the_generation_and_reads_back_bit_exact(ws: Workspace) -> None:
    state = created(ws)
    with ws.writing():
        new = ws.commit({**state, "labels": ["greeting"]}, sample_tensors())
    assert new["generation"] == 1 and new["labels"] == ["greeting"]
    assert new["weights"].startswith("weights/") and weights_generation(new["weights"]) == 1
    assert ws.read_state() == new
    assert ws.latest_generation() == 1
    assert same_bits(ws.read_tensors(new), sample_tensors())
    newer = ws.commit(new, sample_tensors(32))
    assert newer["generation"] == 2 and newer["weights"] != new["weights"]
    assert same_bits(ws.read_tensors(newer), sample_tensors(32))


def test_commit_without_tensors_names_no_weights(ws: Workspace) -> None:
    new = ws.commit(created(ws), {})
    assert new["generation"] == 1
    assert new["weights"] is None
    assert ws.read_tensors(new) == {}
    assert ws.blobs.keys("weights/") == []


def test_missing_weights_raise_workspace_error(ws: Workspace) -> None:
    new = ws.commit(created(ws), sample_tensors())
    ws.blobs.delete(new["weights"])
    with pytest.raises(WorkspaceError):
        ws.read_tensors(new)


def test_collect_garbage_keeps_the_current_and_kept_weights(ws: Workspace) -> None:
    state, names = created(ws), []
    for size in range(8, 15):
        state = ws.commit(state, sample_tensors(size))
        names.append(state["weights"])
    in_flight = f"weights/{state['generation'] + 1:08d}-inflight.safetensors"  # another writer's, uncommitted
    ws.blobs.put(in_flight, b"not yet committed")
    kept = names[1]
    dropped = ws.collect_garbage(state, keep={kept})
    floor = state["generation"] - (KEEP_GENERATIONS if ws.shared else 0)
    expected_left = {k for k in names if k in (kept, state["weights"]) or weights_generation(k) > floor}
    assert set(ws.blobs.keys("weights/")) == expected_left | {in_flight}
    assert set(dropped) == set(names) - expected_left
    assert same_bits(ws.read_tensors(state), sample_tensors(14))
    assert same_bits(ws.read_tensors({"weights": kept}), sample_tensors(9))
    assert ws.collect_garbage(state, keep={kept}) == []


def test_size_bytes_grows(ws: Workspace) -> None:
    state = created(ws)
    before = ws.size_bytes()
    ws.commit(state, {"big": torch.zeros(100_000)})
    assert ws.size_bytes() >= before + 400_000


def test_cache_path_is_stable_per_model(ws: Workspace) -> None:
    assert ws.cache_path("model-a") == ws.cache_path("model-a")
    assert ws.cache_path("model-a") != ws.cache_path("model-b")


def test_collections_are_distinct_per_store(ws: Workspace) -> None:
    names = {ws.collection(store) for store in ("exemplars", "holdout", "inbox")}
    assert len(names) == 3
    created(ws)
    col = ws.client.get_or_create_collection(ws.collection("exemplars"), embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0, 0.0]])
    assert col.count() == 1


def test_clean_temporary_on_a_clean_workspace(ws: Workspace) -> None:
    ws.commit(created(ws), sample_tensors())
    assert ws.clean_temporary(older_than=0.0) == 0


def test_one_generation_has_one_writer(opener: Opener) -> None:
    """Two writers commit on top of the same state: the second to publish gets Conflict, and its
    weights blob is removed; the first one's state is the workspace's."""
    first, second = opener(), opener()
    if not first.shared:
        pytest.skip("one process owns this workspace: there is no second writer to race")
    base = created(first)
    won = first.commit({**base, "labels": ["first"]}, sample_tensors(8))
    with pytest.raises(Conflict):
        second.commit({**base, "labels": ["second"]}, sample_tensors(9))
    assert second.read_state() == won
    assert second.blobs.keys("weights/") == [won["weights"]]


def race(writers: list[Workspace], base: dict[str, Any]) -> list[dict[str, Any] | Conflict]:
    """Every writer commits on top of ``base`` at the same moment; what each one got."""
    barrier, results = threading.Barrier(len(writers)), {}

    def commit(i: int) -> None:
        barrier.wait()
        try:
            results[i] = writers[i].commit({**base, "labels": [f"w{i}"]}, sample_tensors(8 + i))
        except Conflict as exc:
            results[i] = exc

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(len(writers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == len(writers), f"a writer neither committed nor got Conflict: {results}"
    return [results[i] for i in range(len(writers))]


def test_racing_writers_exactly_one_conflict(opener: Opener) -> None:
    """Two writers publish the same generation at the same moment, three rounds in a row."""
    writers = [opener(), opener()]
    if not writers[0].shared:
        pytest.skip("one process owns this workspace: there is no second writer to race")
    state, committed = created(writers[0]), set()
    for round_ in range(3):
        results = race(writers, state)
        conflicts = [r for r in results if isinstance(r, Conflict)]
        assert len(conflicts) == 1, f"round {round_}: {results}"
        (state,) = [r for r in results if isinstance(r, dict)]
        committed.add(state["weights"])
        assert writers[0].read_state() == writers[1].read_state() == state
        assert set(writers[0].blobs.keys("weights/")) == committed  # the loser's weights were removed
