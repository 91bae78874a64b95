"""``agent-il export`` / ``import`` and their Python functions: every format on a workspace that
learned three CLINC150 tasks, and the round trip export -> import into a fresh workspace, which
must then predict the same on the test split."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent_il import IntentLearner, data
from agent_il.cli import app
from agent_il.data import DataError
from agent_il.errors import InvalidInputError
from tests.helpers import fingerprint

TASKS = 3  # three CLINC150 tasks of three intents each


def task_classes(clinc) -> list[list[str]]:
    return [clinc.tasks[i][:3] for i in range(TASKS)]


def cli(*args: str, ok: bool = True):
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def source(clinc, encoder, tmp_path_factory) -> Path:
    """Three tasks, the first two with a held-out slice (the third without)."""
    path = tmp_path_factory.mktemp("export") / "kb"
    with IntentLearner.open(path, encoder=encoder) as learner:
        for i, classes in enumerate(task_classes(clinc)):
            learner.learn(*clinc.split("train", classes), task=f"clinc-{i + 1}", holdout=0.2 if i < 2 else 0.0)
    return path


def predictions(path: Path, encoder, texts: list[str]) -> list[tuple]:
    with IntentLearner.open(path, encoder=encoder, create=False) as learner:
        preds = learner.predict(texts, k=3, evidence=0, inbox=False)
        return [(p.label, p.known, p.confidence, p.top_k) for p in preds]


def tasks_of(path: Path, encoder) -> list[tuple[str, int]]:
    with IntentLearner.open(path, encoder=encoder, create=False) as learner:
        return [(t.name, t.examples) for t in learner.tasks]


def test_round_trip_in_python_predicts_the_same(source, clinc, encoder, tmp_path):
    exported = tmp_path / "kb.jsonl"
    with IntentLearner.open(source, encoder=encoder, create=False) as learner:
        summary = data.export_examples(learner, exported)
        held = sum(len(ids) for ids in learner.state.holdout.values())
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert summary["examples"] == len(rows) == 3 * 3 * 100 and summary["held_out"] == held == 2 * 3 * 20
    ids = [r["task_id"] for r in rows]
    assert set(rows[0]) == set(data.writers.FIELDS) and ids == sorted(ids)
    copy = tmp_path / "copy"
    with IntentLearner.open(copy, encoder=encoder) as learner:
        result = data.replay_export(learner, exported)
    assert [t["task"] for t in result["tasks"]] == ["clinc-1", "clinc-2", "clinc-3"]
    assert result["held_out_reproduced"] and [t["holdout"] > 0 for t in result["tasks"]] == [True, True, False]
    assert tasks_of(copy, encoder) == tasks_of(source, encoder)
    texts, _ = clinc.split("test", [c for t in task_classes(clinc) for c in t])
    assert predictions(copy, encoder, texts) == predictions(source, encoder, texts)


def test_round_trip_on_the_command_line(source, clinc, encoder, tmp_path):
    home = tmp_path / "src"
    shutil.copytree(source, home)
    exported = tmp_path / "kb.jsonl"
    out = json.loads(cli("export", str(exported), "--home", str(home), "--json").stdout)
    assert out["format"] == "jsonl" and out["tasks"] == 3
    copy = tmp_path / "copy"
    cli("init", "--home", str(copy))
    result = json.loads(cli("import", str(exported), "--home", str(copy), "--json").stdout)
    assert result["held_out_reproduced"] and [r["task"]["name"] for r in result["reports"]] == [
        "clinc-1",
        "clinc-2",
        "clinc-3",
    ]
    texts, _ = clinc.split("test", [c for t in task_classes(clinc) for c in t])
    # The command encodes the texts again, in batches of its own: fp32 vectors move in their last
    # bits with a batch's padding, so labels and rankings are the same and scores agree to 1e-6.
    got, want = predictions(copy, encoder, texts), predictions(home, encoder, texts)
    assert [(p[0], p[1], [y for y, _ in p[3]]) for p in got] == [(p[0], p[1], [y for y, _ in p[3]]) for p in want]
    assert np.allclose(
        [[p[2], *(c for _, c in p[3])] for p in got], [[p[2], *(c for _, c in p[3])] for p in want], atol=1e-6
    )


def test_export_formats_read_back(source, clinc, encoder, tmp_path):
    home = tmp_path / "kb"
    shutil.copytree(source, home)
    classes = [c for t in task_classes(clinc) for c in t]
    for name, fmt in (("kb.csv", "csv"), ("nlu.yml", "rasa"), ("routes.json", "semantic-router")):
        out = json.loads(cli("export", str(tmp_path / name), "--home", str(home), "--json").stdout)
        assert out["format"] == fmt and out["examples"] == 900
        back = data.read(tmp_path / name)
        assert back.fmt == fmt and Counter(back.labels) == dict.fromkeys(classes, 100)
    with (tmp_path / "kb.csv").open(newline="") as f:
        first = next(csv.DictReader(f))
    assert set(first) == {"text", "label", "task", "source", "held_out"} and first["task"] == "clinc-1"
    config = json.loads((tmp_path / "routes.json").read_text())
    assert config["encoder_name"] == "sentence-transformers/all-MiniLM-L6-v2" and len(config["routes"]) == 9
    one = json.loads(cli("export", str(tmp_path / "one.jsonl"), "--intent", classes[0], "--intent", classes[4],
                         "--home", str(home), "--json").stdout)  # fmt: skip
    lines = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
    assert one["examples"] == 200 and {r["label"] for r in lines} == {classes[0], classes[4]}


def test_export_refuses_to_overwrite_and_bad_flags(source, tmp_path):
    home = tmp_path / "kb"
    shutil.copytree(source, home)
    target = tmp_path / "kb.jsonl"
    target.write_text("keep me\n")
    for args, message in (
        ([str(target)], "exists; pass --force"),
        ([str(tmp_path / "kb.txt")], "cannot tell the format from the extension"),
        ([str(tmp_path / "x.jsonl"), "--format", "xml"], "unknown export format 'xml'"),
        ([str(tmp_path / "x.jsonl"), "--intent", "no_such_intent"], "no intent named 'no_such_intent'"),
        ([str(tmp_path / "missing" / "x.jsonl")], "no such directory"),
    ):
        result = cli("export", *args, "--home", str(home), ok=False)
        assert result.exit_code == 1 and message in result.stderr and result.stderr.count("\n") == 1, result.output
    assert target.read_text() == "keep me\n" and not (tmp_path / "x.jsonl").exists()
    cli("export", str(target), "--force", "--home", str(home))
    assert len(target.read_text().splitlines()) == 900
    assert not list(tmp_path.glob(".kb.jsonl.*.tmp"))  # written through a temp file, renamed


def test_import_refuses_what_is_not_an_export(source, encoder, tmp_path):
    home = tmp_path / "kb"
    shutil.copytree(source, home)
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"text": "hello", "label": "greet"}\n')
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "hi", "label": "greet", "task": "t", "task_id": 1, "held_out": false}\n{"text": \n')
    before = fingerprint(home)
    for path, message in ((plain, "plain.jsonl line 1: not an agent-il export line"), (broken, "broken.jsonl line 2")):
        result = cli("import", str(path), "--home", str(home), ok=False)
        assert result.exit_code == 1 and message in result.stderr and result.stderr.count("\n") == 1, result.output
    assert fingerprint(home) == before
    with pytest.raises(DataError, match="no such file"):
        data.transfer.read_export(tmp_path / "nothing.jsonl")
    with IntentLearner.open(home, encoder=encoder, create=False) as learner:
        with pytest.raises(InvalidInputError, match="exists"):
            data.export_examples(learner, plain)


def test_holdout_fraction_inverts_the_split():
    assert data.transfer.holdout_fraction({"a": (100, 20), "b": (7, 1)}) == pytest.approx(0.2, abs=0.05)
    assert data.transfer.holdout_fraction({"a": (10, 0), "b": (1, 0)}) == 0.0
    assert data.transfer.holdout_fraction({"a": (100, 20), "b": (100, 40)}) is None  # an edited slice
    assert data.transfer.holdout_fraction({"a": (1, 1)}) is None
