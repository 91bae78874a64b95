"""Damaged files, injected into a real workspace: every command that meets one names it in one
line, ``doctor`` lists every problem and the intact snapshots, ``doctor --repair`` goes back to
the newest intact state, and nothing that failed was committed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_il.cli import app

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "data" / "quickstart"
BANKING, TRAVEL = QUICKSTART / "banking.csv", QUICKSTART / "travel.csv"
PROBES = ["i want to pay my water bill now", "what plug do i need in london", "my card got blocked"]


def run(home: Path, *args: str):
    return CliRunner().invoke(app, [*args, "--home", str(home)])


def answers(home: Path) -> list[tuple[str, float]]:
    result = run(home, "predict", *PROBES, "--json")
    assert result.exit_code == 0, result.output
    return [(p["label"], round(p["confidence"], 6)) for p in json.loads(result.stdout)["predictions"]]


def one_error(result, *words: str) -> None:
    """Exit 1, one ``error:`` line that names the damage, no traceback."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len([line for line in lines if line.startswith("error:")]) == 1, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def flip(path: Path, where: float = 0.5) -> None:
    """One bit of ``path`` flipped (at that fraction of its length)."""
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, list[tuple[str, float]], list[tuple[str, float]]]:
    """Banking, a named snapshot ``v1``, then travel; the answers after banking and after travel."""
    home = tmp_path_factory.mktemp("faults") / "kb"
    assert run(home, "init").exit_code == 0
    assert run(home, "learn", str(BANKING), "--task", "banking", "--holdout", "0.2").exit_code == 0
    after_banking = answers(home)
    assert run(home, "snapshot", "create", "v1").exit_code == 0
    assert run(home, "learn", str(TRAVEL), "--task", "travel", "--holdout", "0.2").exit_code == 0
    return home, after_banking, answers(home)


@pytest.fixture
def home(built, tmp_path) -> Path:
    copy = tmp_path / "kb"
    shutil.copytree(built[0], copy)
    return copy


def doctor(home: Path, *flags: str) -> tuple[int, dict]:
    result = run(home, "doctor", *flags, "--json")
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def test_a_damaged_snapshot_manifest_touches_only_what_reads_it(home, built):
    flip(home / "snapshots" / "v1.json")  # valid JSON still: only its checksum tells
    state = (home / "state.json").read_bytes()
    assert run(home, "status").exit_code == 0
    listed = run(home, "snapshot", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)["damaged"] == ["v1"]
    code, found = doctor(home)
    assert code == 1 and any("snapshot v1" in p and "checksum" in p for p in found["problems"])
    assert "v1" not in found["intact"] and found["intact"][0].startswith("auto-")
    one_error(run(home, "snapshot", "restore", "v1"), "v1", "damaged")
    assert (home / "state.json").read_bytes() == state  # the failed restore committed nothing
    # A learn commits and trims the automatic snapshots past a damaged one of them: no failure.
    flip(home / "snapshots" / "auto-000000.json")
    learned = run(home, "learn", str(TRAVEL), "--task", "again")
    assert learned.exit_code == 0, learned.output
    assert run(home, "rollback").exit_code == 0
    assert answers(home) == built[2]
    assert run(home, "snapshot", "delete", "v1").exit_code == 0
    assert not (home / "snapshots" / "v1.json").exists()


@pytest.mark.parametrize("damage", ["state flipped", "state truncated", "weights flipped", "weights missing"])
def test_a_damaged_state_or_head_is_named_listed_and_repaired(home, built, damage):
    state = json.loads((home / "state.json").read_text())
    weights = home / state["weights"]
    if damage == "state flipped":
        flip(home / "state.json", 0.3)
    elif damage == "state truncated":
        (home / "state.json").write_bytes((home / "state.json").read_bytes()[:500])
    elif damage == "weights flipped":
        flip(weights)
    else:
        weights.unlink()
    damaged = (home / "state.json").read_bytes()
    for command in (["predict", *PROBES], ["status"], ["learn", str(TRAVEL), "--task", "again"], ["rollback"]):
        one_error(run(home, *command), "damaged" if "flipped" in damage else "", "doctor --repair")
        assert (home / "state.json").read_bytes() == damaged  # nothing committed
    code, found = doctor(home)
    assert code == 1 and found["problems"] and found["intact"] == ["auto-000001", "v1", "auto-000000"]
    code, found = doctor(home, "--repair")
    assert code == 0, found
    assert found["repaired"] == [f"restored snapshot auto-000001 as generation {found['generation']}"]
    assert answers(home) == built[1]  # the state before the travel learn, whole
    assert run(home, "learn", str(TRAVEL), "--task", "travel", "--holdout", "0.2").exit_code == 0  # derived again
    assert answers(home) == built[2]


def test_damaged_statistics_are_derived_again(home, built):
    state = json.loads((home / "state.json").read_text())
    flip(home / state["statistics"])
    assert answers(home) == built[2]  # a predict does not read them
    code, found = doctor(home)
    assert code == 1 and any(p.startswith("statistics") for p in found["problems"])
    code, found = doctor(home, "--repair")
    assert code == 0 and found["repaired"] == ["statistics derived again from the stored examples"]
    assert doctor(home)[0] == 0 and answers(home) == built[2]
    state = json.loads((home / "state.json").read_text())
    flip(home / state["statistics"])
    assert run(home, "learn", str(TRAVEL), "--task", "again").exit_code == 0  # a learn derives them too
    assert doctor(home)[0] == 0


@pytest.mark.parametrize("damage", ["truncated", "zeroed"])
def test_a_damaged_chroma_store_is_named_listed_and_rebuilt_from_the_journal(home, built, damage):
    sqlite = home / "chroma" / "chroma.sqlite3"
    size = sqlite.stat().st_size
    if damage == "truncated":
        os.truncate(sqlite, size // 2)
    else:
        sqlite.write_bytes(bytes(size))
    state = (home / "state.json").read_bytes()
    one_error(run(home, "predict", *PROBES), "damaged")
    one_error(run(home, "learn", str(TRAVEL), "--task", "again"), "damaged")
    assert (home / "state.json").read_bytes() == state
    code, found = doctor(home)
    assert code == 1 and any(p.startswith("chroma") for p in found["problems"]) and found["intact"] == []
    code, found = doctor(home, "--repair")
    assert code == 0, found
    assert found["repaired"][0].startswith("rebuilt the Chroma store from the journal")
    assert answers(home) == built[2] and (home / "state.json").read_bytes() == state
    assert len(list(home.glob("chroma.damaged-*"))) == 1  # kept aside, not deleted
    assert run(home, "rollback").exit_code == 0 and answers(home) == built[1]  # snapshots' records too


def test_records_lost_from_a_chroma_store_that_opens_are_rebuilt_from_the_journal(home, built):
    import chromadb
    from chromadb.api.client import SharedSystemClient

    client = chromadb.PersistentClient(str(home / "chroma"))
    examples = client.get_collection("examples")
    examples.delete(ids=examples.get(limit=25, include=[])["ids"])
    del client, examples
    SharedSystemClient.clear_system_cache()
    code, found = doctor(home)
    assert code == 1 and any(p.startswith("chroma (examples)") and "lost 25" in p for p in found["problems"])
    code, found = doctor(home, "--repair")
    assert code == 0 and found["repaired"][0].startswith("rebuilt the Chroma store from the journal"), found
    assert answers(home) == built[2]
    assert run(home, "learn", str(TRAVEL), "--task", "again").exit_code == 0


def test_restoring_an_automatic_snapshot_by_name_saves_the_present(home, built):
    assert run(home, "snapshot", "restore", "auto-000001").exit_code == 0
    assert answers(home) == built[1]
    names = [s["name"] for s in json.loads(run(home, "snapshot", "list", "--json").stdout)["snapshots"]]
    assert "auto-000002" in names  # the present before the restore, as the help promises
    assert run(home, "snapshot", "restore", "auto-000002").exit_code == 0
    assert answers(home) == built[2]
