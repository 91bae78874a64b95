"""The agent-il command line, in-process (Typer's CliRunner) and as the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_il.cli import app
from tests.helpers import fingerprint

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "data" / "quickstart"
BANKING, TRAVEL, TEST = QUICKSTART / "banking.csv", QUICKSTART / "travel.csv", QUICKSTART / "test.csv"
PROBES = ["i want to pay my water bill now", "what plug do i need in london", "my card got blocked"]


def run(*args: str, home: Path, ok: bool = True):
    result = CliRunner().invoke(app, [*args, "--home", str(home)])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def as_json(*args: str, home: Path):
    return json.loads(run(*args, "--json", home=home).stdout)


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> Path:
    """A workspace that learned banking, then travel, each with a held-out slice."""
    home = tmp_path_factory.mktemp("cli") / "kb"
    run("init", home=home)
    run("learn", str(BANKING), "--task", "banking", "--holdout", "0.2", home=home)
    run("learn", str(TRAVEL), "--task", "travel", "--holdout", "0.2", home=home)
    return home


@pytest.fixture
def home(learned, tmp_path) -> Path:
    copy = tmp_path / "kb"
    shutil.copytree(learned, copy)
    return copy


def test_help_lists_commands_with_examples():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "learn", "predict", "tasks", "snapshot", "rollback", "evaluate", "status"):
        assert command in result.stdout
    for command in (["learn"], ["predict"], ["evaluate"], ["snapshot", "restore"], ["tasks", "show"], ["init"]):
        sub = CliRunner().invoke(app, [*command, "--help"])
        assert sub.exit_code == 0 and "Example" in sub.stdout, command


def test_learn_reports_changes_and_forgetting(tmp_path):
    home = tmp_path / "kb"
    run("init", "--strategy", "ewc-replay", "--memory-per-class", "10", home=home)
    first = as_json("learn", str(BANKING), "--task", "banking", "--holdout", "0.2", home=home)
    assert len(first["new_classes"]) == 6 and first["holdout_examples"] == 60
    second = as_json("learn", str(TRAVEL), "--task", "travel", "--holdout", "0.2", home=home)
    assert second["task"]["name"] == "travel" and second["classes_total"] == 12
    banking = next(a for a in second["holdout_accuracy"] if a["name"] == "banking")
    assert banking["before"] is not None and banking["after"] >= banking["before"] - 10
    assert second["snapshot"] == "auto-000001" and second["exemplars_total"] == 120
    text = run("learn", str(BANKING), "--task", "more-banking", home=home).stdout
    assert "0 new classes, 6 updated" in text and "rollback" in text


def test_predict_texts_and_file(home):
    out = as_json("predict", *PROBES, "--top-k", "2", "--evidence", "1", home=home)["predictions"]
    assert [p["top_k"][0]["label"] for p in out] == ["pay_bill", "plug_type", "account_blocked"]
    assert all(len(p["top_k"]) == 2 and len(p["evidence"]) == 1 for p in out)
    assert out[0]["evidence"][0]["label"] == "pay_bill" and out[0]["text"] == PROBES[0]
    from_file = as_json("predict", "--file", str(TEST), home=home)["predictions"]
    assert len(from_file) == 360
    text = run("predict", PROBES[0], home=home).stdout
    assert text.startswith("pay_bill")


def test_evaluate_matrix_file_and_plot(home, tmp_path):
    summary = as_json("evaluate", home=home)
    assert summary["tasks"] == [1, 2] and summary["task_names"] == {"1": "banking", "2": "travel"}
    assert summary["forgetting"] is not None and summary["forgetting"] <= 10
    assert summary["final_accuracy"] >= 90
    plot = tmp_path / "m.png"
    text = run("evaluate", "--plot", str(plot), home=home).stdout
    assert "average forgetting" in text and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = as_json("evaluate", str(TEST), home=home)
    assert result["examples"] == 360 and result["accuracy"] >= 90
    assert set(result["per_task"]) == {"1", "2"} and len(result["per_class"]) == 12


def test_tasks_status_and_snapshots(home):
    tasks = as_json("tasks", "list", home=home)["tasks"]
    assert [t["name"] for t in tasks] == ["banking", "travel"]
    shown = as_json("tasks", "show", "banking", home=home)
    assert shown["id"] == 1 and set(shown["exemplars"].values()) == {20}
    assert [a["after_task"] for a in shown["holdout_accuracy"]] == [1, 2]
    status = as_json("status", home=home)
    assert (status["classes"], status["tasks"], status["exemplars"], status["snapshots"]) == (12, 2, 240, 2)
    created = as_json("snapshot", "create", "v1", home=home)
    assert created["classes"] == 12
    names = [s["name"] for s in as_json("snapshot", "list", home=home)["snapshots"]]
    assert names == ["auto-000000", "auto-000001", "v1"]
    assert as_json("snapshot", "delete", "v1", home=home) == {"deleted": "v1"}


def test_rollback_and_restore(home):
    before_second = None
    run("rollback", home=home)  # undo travel
    before_second = as_json("predict", *PROBES, home=home)
    assert as_json("status", home=home)["classes"] == 6
    run("learn", str(TRAVEL), "--task", "travel", home=home)
    as_json("snapshot", "create", "both", home=home)
    assert as_json("predict", *PROBES, home=home) != before_second
    assert as_json("rollback", home=home)["restored"]["classes"] == 6
    assert as_json("predict", *PROBES, home=home) == before_second
    as_json("snapshot", "restore", "both", home=home)
    assert as_json("status", home=home)["classes"] == 12


def test_workspace_from_environment(learned, monkeypatch):
    monkeypatch.setenv("AGENT_IL_HOME", str(learned))
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["path"] == str(learned.resolve())


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


ERROR_CASES = [
    (lambda t: ["learn", str(t / "absent.csv")], "no such file"),
    (lambda t: ["learn", str(BANKING), "--text-col", "utterance"], "columns are: text, intent"),
    (lambda t: ["learn", write(t, "empty.csv", b"")], "the file is empty"),
    (lambda t: ["learn", write(t, "header.csv", b"text,intent\n")], "holds no examples"),
    (lambda t: ["learn", write(t, "t.csv", b"text,intent\nhi,greet\n  ,greet\n")], "line 3: empty or missing text"),
    (lambda t: ["learn", write(t, "l.csv", b"text,intent\nhi,greet\nyo,\n")], "line 3: empty or missing label"),
    (lambda t: ["learn", write(t, "b.csv", b"text,intent\nh\xffi,greet\n")], "line 2: not UTF-8"),
    (lambda t: ["learn", write(t, "j.jsonl", b'{"text": "hi", "label": "greet"}\n{oops\n')], "line 2: not valid JSON"),
    (lambda t: ["learn", write(t, "x.xml", b"<a/>")], "pass --format"),
    (lambda t: ["learn", str(BANKING), "--holdout", "1"], "holdout must be"),
    (lambda t: ["snapshot", "restore", "absent"], "no snapshot named 'absent'"),
    (lambda t: ["snapshot", "create", "../../escape"], "bad snapshot name"),
    (lambda t: ["predict", "hello", "--model", str(t)], "workspace was built with model"),
    (lambda t: ["tasks", "show", "nope"], "no task 'nope'"),
    (lambda t: ["evaluate", "--plot", str(t / "x.jpg")], "give a path ending in .png"),
    (lambda t: ["predict"], "give texts to classify"),
    (lambda t: ["init"], "already a workspace"),
]


@pytest.mark.parametrize(("args", "message"), ERROR_CASES)
def test_errors_are_one_line_and_change_nothing(home, tmp_path, args, message):
    before = fingerprint(home)
    result = CliRunner().invoke(app, [*args(tmp_path), "--home", str(home)])
    assert result.exit_code == 1, result.output
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert fingerprint(home) == before


def test_missing_workspace_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["status", "--home", str(tmp_path / "none")])
    assert result.exit_code == 1 and "agent-il init" in result.stderr


def test_init_with_an_unloadable_model_creates_nothing(tmp_path):
    home = tmp_path / "kb"
    result = CliRunner().invoke(app, ["init", "--home", str(home), "--model", "no-such-model-anywhere"])
    assert result.exit_code == 1 and "could not load encoder model" in result.stderr
    assert not (home / "state.json").exists()


def console_script() -> str:
    found = shutil.which("agent-il", path=os.path.dirname(sys.executable)) or shutil.which("agent-il")
    assert found, "the agent-il console script is not installed (pip install -e .)"
    return found


@pytest.mark.slow
def test_installed_console_script_end_to_end(tmp_path):
    exe = console_script()
    home = str(tmp_path / "kb")

    def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([exe, *args, "--home", home], capture_output=True, text=True, timeout=300)
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc

    cli("init")
    cli("learn", str(BANKING), "--task", "banking", "--holdout", "0.2")
    before = json.loads(cli("predict", *PROBES, "--json").stdout)
    second = json.loads(cli("learn", str(TRAVEL), "--task", "travel", "--holdout", "0.2", "--json").stdout)
    assert second["classes_total"] == 12
    evaluation = json.loads(cli("evaluate", "--json").stdout)
    assert evaluation["forgetting"] is not None
    cli("snapshot", "create", "after-travel")
    assert json.loads(cli("predict", *PROBES, "--json").stdout) != before
    cli("rollback")
    assert json.loads(cli("predict", *PROBES, "--json").stdout) == before
    failed = cli("learn", str(tmp_path / "absent.csv"), ok=False)
    assert failed.returncode == 1 and failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr
    same = subprocess.run(
        [sys.executable, "cli.py", "status", "--json", "--home", home],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=300,
    )
    assert same.returncode == 0 and json.loads(same.stdout)["classes"] == 6
