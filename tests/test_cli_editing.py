"""``agent-il intents list|show|rename|merge|delete`` and ``examples list|remove|relabel``: the
knowledge base edited from the command line, in-process through Typer's CliRunner. A small
workspace (five CLINC150 intents of 20 examples, two learns with held-out slices) is learned once;
every test that edits works on a copy."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_il.cli import app
from agent_il.cli.commands import editing
from tests.conftest import CLINC

LEARNS = {"money": ["pay_bill", "balance"], "travel": ["plug_type", "flight_status", "translate"]}
SECRET = "paye ma facture d'électricité, s'il te plaît"  # non-ASCII: its UTF-8 bytes must all go


def run(*args: str, home: Path, ok: bool = True, input: str | None = None):
    result = CliRunner().invoke(app, [*args, "--home", str(home)], input=input)
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def as_json(*args: str, home: Path):
    return json.loads(run(*args, "--json", home=home).stdout)


def labels(home: Path) -> list[str]:
    return [i["label"] for i in as_json("intents", "list", home=home)["intents"]]


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli-editing")
    by: dict[str, list[str]] = {}
    for text, label in json.loads(CLINC.read_text())["train"]:
        by.setdefault(label, []).append(text)
    home = root / "kb"
    run("init", home=home)
    for task, intents in LEARNS.items():
        path = root / f"{task}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "intent"])
            w.writerows((text, y) for y in intents for text in by[y][:20])
            if task == "money":
                w.writerow([SECRET, "pay_bill"])
        run("learn", str(path), "--task", task, "--holdout", "0.2", home=home)
    return home


@pytest.fixture
def home(learned, tmp_path) -> Path:
    copy = tmp_path / "kb"
    shutil.copytree(learned, copy)
    return copy


def test_intents_list_and_show(learned):
    infos = as_json("intents", "list", home=learned)["intents"]
    assert [i["label"] for i in infos] == [y for ys in LEARNS.values() for y in ys]
    pay = infos[0]
    assert (pay["examples"], pay["held_out"], pay["tasks"]) == (17, 4, ["money"])
    assert pay["exemplars"] > 0 and pay["holdout_accuracy"] is not None
    text = run("intents", "list", home=learned).stdout
    for col in ("intent", "examples", "exemplars", "held-out", "tasks", "held-out accuracy", "flight_status"):
        assert col in text
    shown = as_json("intents", "show", "translate", home=learned)
    assert shown["intent"]["label"] == "translate" and len(shown["examples"]) == 20
    assert sum(e["held_out"] for e in shown["examples"]) == 4 and {e["task"] for e in shown["examples"]} == {"travel"}
    first = shown["examples"][0]
    text = run("intents", "show", "translate", home=learned).stdout
    assert "Intent translate: 16 examples" in text and first["id"] in text and first["text"] in text
    assert "confusions" in as_json("intents", "confusions", home=learned)  # the same group holds it


def test_examples_list_filters(learned):
    every = as_json("examples", "list", home=learned)["examples"]
    assert len(every) == 101 and {"id", "label", "task", "text", "held_out"} <= set(every[0])
    only = as_json("examples", "list", "--intent", "balance", home=learned)["examples"]
    assert len(only) == 20 and {e["label"] for e in only} == {"balance"}
    found = as_json("examples", "list", "--search", "BILL", home=learned)["examples"]
    assert found and all("bill" in e["text"].lower() for e in found)
    assert len(as_json("examples", "list", "--limit", "3", home=learned)["examples"]) == 3
    travel = as_json("examples", "list", "--task", "travel", home=learned)["examples"]
    assert len(travel) == 60 and {e["task"] for e in travel} == {"travel"}
    text = run("examples", "list", "--intent", "plug_type", "--limit", "2", home=learned).stdout
    assert only[0]["id"] not in text and "plug_type" in text and "raise --limit" in text


def test_rename_merge_delete_with_yes(home):
    report = as_json("intents", "rename", "balance", "account_balance", "--yes", home=home)
    assert report["action"] == "rename" and report["changed"]["intents"] == {
        "added": ["account_balance"],
        "gone": ["balance"],
    }
    assert labels(home) == ["pay_bill", "account_balance", "plug_type", "flight_status", "translate"]
    report = as_json("intents", "merge", "pay_bill", "account_balance", "--into", "money", "--yes", home=home)
    assert report["action"] == "merge" and report["examples_relabelled"] == 33
    assert labels(home) == ["money", "plug_type", "flight_status", "translate"]
    text = run("intents", "delete", "translate", "--yes", home=home).stdout
    assert text.startswith("Will delete intent translate: 16 examples, 4 held out.")
    assert "Deleted intent translate (16 examples and 4 held out)" in text
    assert "Workspace: 3 intents" in text and "Snapshot of the state before: auto-" in text
    assert labels(home) == ["money", "plug_type", "flight_status"]
    run("rollback", home=home)  # an edit is undone like a learn
    assert labels(home) == ["money", "plug_type", "flight_status", "translate"]


def test_json_with_yes_prints_only_the_report(home):
    result = run("intents", "delete", "translate", "--yes", "--json", home=home)
    report = json.loads(result.stdout)
    assert report["action"] == "delete" and report["examples_removed"] == 16 and report["snapshot"]
    assert {a["name"] for a in report["holdout_accuracy"]} == {"money", "travel"}
    assert result.stderr == ""


DESTRUCTIVE = [
    ["intents", "rename", "balance", "account_balance"],
    ["intents", "merge", "pay_bill", "balance", "--into", "money"],
    ["intents", "delete", "translate"],
    ["examples", "remove", "--text", SECRET],
    ["examples", "remove", "--text", SECRET, "--purge"],
    ["examples", "relabel", "--text", SECRET, "--as", "balance"],
]


@pytest.mark.parametrize("args", DESTRUCTIVE, ids=lambda a: " ".join(a[:2]))
def test_without_yes_and_no_terminal_nothing_changes(home, args):
    state = (home / "state.json").read_bytes()
    result = run(*args, home=home, ok=False)
    assert result.exit_code == 1 and result.stdout.startswith("Will ")
    assert result.stderr.startswith("error: nothing changed") and "pass --yes" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert (home / "state.json").read_bytes() == state
    as_json_run = run(*args, "--json", home=home, ok=False)  # the plan goes to stderr, stdout stays empty
    assert as_json_run.exit_code == 1 and as_json_run.stdout == "" and "Will " in as_json_run.stderr
    assert (home / "state.json").read_bytes() == state


def test_on_a_terminal_it_asks(home, monkeypatch):
    monkeypatch.setattr(editing, "interactive", lambda: True)
    state = (home / "state.json").read_bytes()
    no = run("intents", "delete", "translate", home=home, ok=False, input="n\n")
    assert no.exit_code == 1 and "Delete intent translate?" in no.stdout and "nothing changed" in no.stderr
    assert (home / "state.json").read_bytes() == state
    run("intents", "delete", "translate", home=home, input="y\n")
    assert "translate" not in labels(home)


def test_examples_remove_and_relabel(home, tmp_path):
    balance = as_json("examples", "list", "--intent", "balance", home=home)["examples"]
    ids = [balance[0]["id"], balance[-1]["id"]]  # one learned, one held out
    assert [balance[0]["held_out"], balance[-1]["held_out"]] == [False, True]
    text = run("examples", "remove", *ids, "--yes", home=home).stdout
    assert "Will remove 2 examples (1 held out) of intent balance:" in text and ids[0] in text
    assert "Removed 1 example and 1 held out" in text
    left = as_json("examples", "list", home=home)["examples"]
    assert len(left) == 99 and not {e["id"] for e in left} & set(ids)

    report = as_json("examples", "remove", "--text", balance[1]["text"], "--yes", home=home)
    assert report["examples_removed"] == 1 and report["changed"]["removed"] == [balance[1]["id"]]

    plugs = as_json("examples", "list", "--intent", "plug_type", "--limit", "3", home=home)["examples"]
    listed = tmp_path / "texts.txt"
    listed.write_text(f"{plugs[1]['text']}\n\n{plugs[2]['text']}\n", encoding="utf-8")
    report = as_json("examples", "relabel", plugs[0]["id"], "--as", "translate", "--yes", home=home)
    assert report["examples_relabelled"] == 1 and report["changed"]["relabelled"][plugs[0]["id"]]["to"] == "translate"
    text = run("examples", "relabel", "--file", str(listed), "--as", "adapters", "--yes", home=home).stdout
    assert "as adapters (a new intent)" in text and "new intents: adapters" in text
    counts = {i["label"]: i["examples"] for i in as_json("intents", "list", home=home)["intents"]}
    assert (counts["balance"], counts["plug_type"], counts["translate"], counts["adapters"]) == (14, 13, 17, 2)


BAD_INPUT = [
    (["intents", "show", "nope"], "no intent named 'nope'"),
    (["intents", "delete", "nope", "--yes"], "no intent named 'nope'"),
    (["examples", "list", "--intent", "nope"], "no intent named 'nope'"),
    (["examples", "remove", "0123456789abcdef", "--yes"], "no example '0123456789abcdef'"),
    (["examples", "relabel", "--text", "never said", "--as", "balance", "--yes"], "no example has the text"),
    (["intents", "rename", "balance", "pay_bill", "--yes"], "intents merge balance pay_bill --into pay_bill"),
    (["intents", "rename", "balance", "unknown", "--yes"], "unknown"),
    (["intents", "rename", "balance", "balance", "--yes"], "already has that name"),
    (["intents", "merge", "balance", "--into", "money", "--yes"], "at least two intents"),
    (["intents", "merge", "balance", "balance", "--into", "money", "--yes"], "at least two intents"),
    (["intents", "merge", "balance", "pay_bill", "--into", "translate", "--yes"], "is another intent"),
    (["examples", "remove", "0123456789abcdef", "--text", SECRET, "--yes"], "(got IDS and --text)"),
    (["examples", "remove", "--yes"], "name the examples by IDS, --text TEXT or --file FILE"),
    (["examples", "remove", "--text", SECRET, "--drop-snapshots", "--yes"], "--drop-snapshots goes with --purge"),
    (["examples", "remove", "--file", "absent.txt", "--yes"], "absent.txt: no such file"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=lambda a: " ".join(a[:3]) if isinstance(a, list) else None)
def test_bad_input_is_one_line_and_changes_nothing(home, args, message):
    state = (home / "state.json").read_bytes()
    result = run(*args, home=home, ok=False)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert (home / "state.json").read_bytes() == state


def test_purge_leaves_no_byte_of_the_text(home):
    run("predict", SECRET, home=home)  # its embedding is cached now, and may sit in the inbox
    run("snapshot", "create", "before", home=home)
    text = run("examples", "remove", "--text", SECRET, "--purge", "--yes", home=home).stdout
    assert "and erase their texts from every place" in text and "Erased every copy of the texts:" in text
    assert "snapshots rewritten" in text and "embedding cache 1" in text
    needle = SECRET.encode("utf-8")
    hits = {p: p.read_bytes().find(needle) for p in home.rglob("*") if p.is_file()}
    leaked = {str(p.relative_to(home)): (at, p.stat().st_size) for p, at in hits.items() if at >= 0}
    assert leaked == {}
    assert not as_json("examples", "list", "--search", "électricité", home=home)["examples"]
    run("snapshot", "restore", "before", home=home)  # a rewritten snapshot restores, without the text
    assert not as_json("examples", "list", "--search", "électricité", home=home)["examples"]
