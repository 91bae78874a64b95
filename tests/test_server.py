"""Server mode: workspaces on a real Chroma server (``chroma run`` on loopback), shared by
several agent processes that learn and predict at the same time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from agent_il import IntentLearner, InvalidInputError, WorkspaceError
from agent_il.cli.app import app
from agent_il.data import read
from agent_il.memory.records import Records
from tests.helpers import records_held
from tests.test_crash import CLI, ENV, WORKER, save, start, vectors

QUICK = Path(__file__).resolve().parent.parent / "examples" / "data" / "quickstart"


def quick(name: str) -> tuple[list[str], list[str]]:
    rows = read(QUICK / f"{name}.csv")
    return rows.texts, rows.labels


def test_everything_works_over_a_server(chroma_url, server_name, encoder):
    where = {"chroma_url": chroma_url, "name": server_name}
    one = IntentLearner.open(**where, encoder=encoder)
    one.learn(*quick("banking"), task="banking", holdout=0.2)
    other = IntentLearner.open(**where, encoder=encoder)  # a second agent, opened before the next learn
    report = one.learn(*quick("travel"), task="travel", holdout=0.2)
    assert report.snapshot == "auto-000001" and len(report.holdout_accuracy) == 2
    # the other agent answers with the new intent on its next call, without reopening
    assert other.predict(["is my flight on time"], k=1)[0].label == "flight_status"
    assert other.status()["classes"] == 12 and other.status()["path"].endswith(server_name)
    test_texts, test_labels = quick("test")
    assert other.evaluate(test_texts, test_labels).accuracy > 85.0
    assert other.accuracy_matrix().forgetting() is not None

    one.snapshot("both")
    assert one.rollback().name == "auto-000001"
    assert other.predict(["is my flight on time"], k=1)[0].label != "flight_status"
    other.restore("both")
    assert one.predict(["is my flight on time"], k=1)[0].label == "flight_status"
    assert [s.name for s in one.snapshots.list() if not s.auto] == ["both"]
    # records that a writer has added but not committed yet are no evidence
    text = "is my flight on time"
    meta = {"label": "pending_intent", "task": "x", "task_id": 99, "time": 0.0}
    one.memory.add(Records(["pending"], encoder.encode([text]), [text], [meta]), one.state.generation + 1)
    assert "pending_intent" not in [e.label for e in other.predict([text], k=1, evidence=5)[0].evidence]
    one.memory.delete(["pending"])
    assert one.doctor().ok
    for learner in (one, other):
        learner.close()


def test_a_second_process_predicts_what_another_learned_without_restart(chroma_url, server_name, encoder, tmp_path):
    where = {"chroma_url": chroma_url, "name": server_name}
    learner = IntentLearner.open(**where, encoder=encoder)
    learner.learn(*quick("banking"), task="banking")
    agent = subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps({"where": where, "op": "agent"})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert agent.stdin is not None and agent.stdout is not None
    assert agent.stdout.readline().strip() == "ready"

    def ask(text: str) -> str:
        agent.stdin.write(text + "\n")  # type: ignore[union-attr]
        agent.stdin.flush()  # type: ignore[union-attr]
        return json.loads(agent.stdout.readline())["label"]  # type: ignore[union-attr]

    assert ask("is my flight on time") != "flight_status"
    where_cli = ["--chroma-url", chroma_url, "--workspace", server_name]
    cli = subprocess.run(
        [sys.executable, str(CLI), *where_cli, "learn", str(QUICK / "travel.csv"), "--task", "travel", "--json"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert "flight_status" in json.loads(cli.stdout)["new_classes"]
    assert ask("is my flight on time") == "flight_status"
    agent.stdin.close()
    assert agent.wait(60) == 0
    learner.close()


def test_concurrent_learners_lose_nothing(chroma_url, server_name, clinc, encoder, tmp_path):
    where = {"chroma_url": chroma_url, "name": server_name}
    IntentLearner.open(**where, encoder=encoder).close()  # created, empty
    groups = [clinc.tasks[i][:3] for i in range(4)]
    counts = {}
    specs = []
    for i, classes in enumerate(groups):
        x, labels, texts = vectors(clinc, encoder, classes, per_class=30)
        counts.update({c: labels.count(c) for c in classes})
        data = save(tmp_path / f"g{i}.npz", x, labels, texts)
        specs.append({"where": where, "op": "learn", "data": data, "task": f"agent-{i}"})
    go = time.time() + 8  # every worker imports and connects first, then all learn at once
    procs = [start({**spec, "start_at": go}) for spec in specs]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.strip() == "done"

    learner = IntentLearner.open(**where, encoder=encoder)
    assert sorted(learner.labels) == sorted(c for g in groups for c in g)
    assert sorted(t.name for t in learner.tasks) == [f"agent-{i}" for i in range(4)]
    assert learner.exemplar_counts() == {c: min(20, n) for c, n in counts.items()}
    assert records_held(learner)["examples"] == sum(counts.values())
    x, labels, _ = vectors(clinc, encoder, [c for g in groups for c in g], split="test", per_class=10)
    hits = [p.top_k[0][0] == y for p, y in zip(learner.predict_vectors(x, k=1, evidence=0, inbox=False), labels)]
    assert sum(hits) / len(hits) > 0.9
    assert learner.doctor().ok
    learner.close()


def test_edits_over_a_server_match_embedded_and_race_with_learners(chroma_url, server_name, clinc, encoder, tmp_path):
    """The same edits on a server and embedded give the same head; edits made while two other
    processes learn lose nothing (a writer that loses the race recomputes on the winner's state)."""
    where = {"chroma_url": chroma_url, "name": server_name}
    classes = clinc.tasks[0][:4]
    x, labels, texts = vectors(clinc, encoder, classes, per_class=30)
    small = {"strategy_config": {"features": 512}}  # a 3 MB Gram matrix: each commit uploads it
    server = IntentLearner.open(**where, encoder=encoder, **small)
    local = IntentLearner.open(tmp_path / "kb", encoder=encoder, **small)
    moved = [t for t, y in zip(texts, labels) if y == classes[1]][:5]
    for learner in (server, local):
        learner.learn_vectors(x, labels, task="base", texts=texts)
        learner.delete_intent(classes[0])
        learner.relabel(texts=moved, to=classes[2])
    qx, _, _ = vectors(clinc, encoder, classes, split="test", per_class=10)
    state = server.workspace.read_state()
    with pytest.raises(InvalidInputError, match="purge: a Chroma server keeps deleted rows"):
        server.remove_examples(texts=moved[:1], purge=True)
    assert server.workspace.read_state() == state
    reader = IntentLearner.open(**where, encoder=encoder)  # a reader downloads the lean generation only
    assert reader.labels == local.labels and reader.strategy.gram is None
    q = torch.from_numpy(qx)
    assert float((reader.strategy.raw_scores(q) - local.strategy.raw_scores(q)).abs().max()) < 1e-4

    specs = []
    for i in range(2):
        gx, gl, gt = vectors(clinc, encoder, clinc.tasks[1 + i][:3], per_class=30)
        specs.append({"where": where, "op": "learn", "data": save(tmp_path / f"g{i}.npz", gx, gl, gt), "task": f"w{i}"})
    go = time.time() + 8
    procs = [start({**spec, "start_at": go}) for spec in specs]
    time.sleep(max(0.0, go - time.time()))
    server.rename_intent(classes[3], "renamed")
    server.relabel(texts=moved[:2], to="renamed")
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.strip() == "done"
    again = IntentLearner.open(**where, encoder=encoder)
    learned = [c for i in range(2) for c in clinc.tasks[1 + i][:3]]
    assert sorted(again.labels) == sorted([classes[1], classes[2], "renamed", *learned])
    by_text = {e.text: e.label for e in again.examples()}
    assert [by_text[t] for t in moved] == ["renamed"] * 2 + [classes[2]] * 3
    assert sorted(t.name for t in again.tasks) == ["base", "w0", "w1"]
    assert again.doctor().ok
    for learner in (server, local, reader, again):
        learner.close()


def test_tampered_blob_on_the_server_is_refused(chroma_url, server_name, encoder):
    where = {"chroma_url": chroma_url, "name": server_name}
    learner = IntentLearner.open(**where, encoder=encoder)
    learner.learn(*quick("banking"))
    learner.snapshot("saved")
    meta = learner.workspace.client.get_collection(f"{server_name}.meta")
    got = meta.get(where={"kind": "part"}, include=["metadatas"])
    (row,) = [(i, m) for i, m in zip(got["ids"], got["metadatas"]) if m["key"] == "snapshots/saved.json"][:1]
    flipped = row[1]["data"][:-8] + ("A" * 8 if not row[1]["data"].endswith("A" * 8) else "B" * 8)
    meta.update(ids=[row[0]], metadatas=[{**row[1], "data": flipped}])
    before = learner.state.to_json()
    with pytest.raises(WorkspaceError, match="damaged"):
        learner.restore("saved")
    assert learner.workspace.read_state() == before
    assert not learner.doctor().ok
    learner.close()


def test_bad_server_settings_are_clear(chroma_url, encoder):
    for bad in ["../escape", "a", "has space", "x" * 80, "-dash"]:
        with pytest.raises(InvalidInputError, match="workspace name"):
            IntentLearner.open(chroma_url=chroma_url, name=bad, encoder=encoder)
    with pytest.raises(InvalidInputError, match="Chroma URL"):
        IntentLearner.open(chroma_url="ftp://x", encoder=encoder)
    with pytest.raises(WorkspaceError, match="cannot reach"):
        IntentLearner.open(chroma_url="http://127.0.0.1:9", encoder=encoder)
    result = CliRunner().invoke(app, ["--chroma-url", chroma_url, "--workspace", "t-absent-here", "status"])
    assert result.exit_code == 1 and "agent-il init --workspace t-absent-here" in result.output
