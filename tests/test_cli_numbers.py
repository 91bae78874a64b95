"""Every numeric option of every command, given nan, inf, a negative and a huge value: a refusal
is exit status 1 with one ``error:`` line naming the option, no traceback, the workspace as it was.
The options are found by walking the command tree, so a new numeric option is covered (or this
test asks for the arguments its command needs)."""

from __future__ import annotations

import shutil
import typing
from pathlib import Path
from typing import Any

import pytest
from typer.core import TyperOption
from typer.main import get_command
from typer.testing import CliRunner

from agent_il.cli import app

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "data" / "quickstart"
BANKING, TEST = QUICKSTART / "banking.csv", QUICKSTART / "test.csv"

HUGE_INT, HUGE_FLOAT = "1000000000000", "1e300"
BAD = ("nan", "inf", "-1")

# What each command needs besides the option under test ({home} and {out} are filled in).
BASE: dict[tuple[str, ...], list[str]] = {
    ("init",): [],
    ("learn",): [str(BANKING)],
    ("predict",): ["is my card blocked", "--no-inbox"],
    ("calibrate",): [],
    ("discover",): [],
    ("intents", "confusions"): [],
    ("inbox", "list"): [],
    ("examples", "list"): [],
    ("consolidate",): [],
    ("bench",): [str(BANKING), "--test", str(TEST), "--quick", "--out", "{out}"],
    ("serve",): ["mcp"],
}
# Options whose huge value is a legitimate request (list or show more than there is).
HUGE_OK = {
    (("predict",), "--top-k"),
    (("predict",), "--evidence"),
    (("intents", "confusions"), "--top"),
    (("inbox", "list"), "--limit"),
    (("examples", "list"), "--limit"),
    (("discover",), "--min-size"),
}
# Values that are a legitimate setting: accepted (run on a copy of the workspace).
ACCEPTED = {(("calibrate",), "--threshold", "-1")}


def _numeric(param: Any) -> str | None:
    """'int' or 'float' for a numeric option: an int or float annotation (Typer's own parameter
    classes keep it as ``type_descriptor``), or a text option whose metavar says it is a number,
    parsed by agent_il.validation so that nan reaches the check."""
    if not isinstance(param, TyperOption) or param.is_flag:
        return None
    if param.metavar == "INTEGER":
        return "int"
    if param.metavar in ("NUMBER", "FLOAT"):
        return "float"
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    kinds = set(typing.get_args(annotation)) | {annotation}
    if int in kinds:
        return "int"
    if float in kinds:
        return "float"
    return None


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str, str]]:
    found = [(path, p.opts[0], kind) for p in cmd.params if (kind := _numeric(p)) and path]
    for name, sub in getattr(cmd, "commands", {}).items():
        found += _walk(sub, (*path, name))
    return found


OPTIONS = [*_walk(get_command(app)), (("bench",), "--seeds", "int")]  # a list of texts, each an integer
CASES = [
    (path, opt, value) for path, opt, kind in OPTIONS for value in (*BAD, HUGE_INT if kind == "int" else HUGE_FLOAT)
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("numbers") / "kb"
    for args in (["init"], ["learn", str(BANKING), "--holdout", "0.2"]):
        result = CliRunner().invoke(app, [*args, "--home", str(home)])
        assert result.exit_code == 0, result.output
    return home


def _check(result, where: str, state_before: bytes, home: Path, allow_ok: bool) -> None:
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in out, (where, out)
    state = home / "state.json"
    assert (state.read_bytes() if state.exists() else b"") == state_before, f"{where} changed the workspace"
    if allow_ok and result.exit_code == 0:
        return
    assert result.exit_code == 1, (where, result.exit_code, out)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and len(result.stderr.strip().splitlines()) == 1, (where, result.stderr)


def test_the_walk_finds_the_numeric_options():
    found = {(path, opt) for path, opt, _ in OPTIONS}
    for expected in [(("predict",), "--top-k"), (("discover",), "--distance"), (("learn",), "--holdout")]:
        assert expected in found
    missing = sorted({path for path, _, _ in OPTIONS} - set(BASE))
    assert not missing, f"give the arguments these commands need in BASE: {missing}"


@pytest.mark.parametrize(("path", "opt", "value"), CASES, ids=[f"{' '.join(p)} {o} {v}" for p, o, v in CASES])
def test_numeric_option_refuses_bad_values(home: Path, tmp_path: Path, path, opt, value):
    base = [a.replace("{out}", str(tmp_path / "bench")) for a in BASE[path]]
    if (path, opt, value) in ACCEPTED:
        copy = tmp_path / "kb"
        shutil.copytree(home, copy)
        result = CliRunner().invoke(app, [*path, *base, opt, value, "--home", str(copy)])
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        return
    if path == ("init",):  # on a new directory: a refusal creates nothing
        fresh = tmp_path / "new"
        result = CliRunner().invoke(app, ["init", opt, value, "--home", str(fresh)])
        assert not (fresh / "state.json").exists()
        _check(result, f"init {opt} {value}", b"", fresh, allow_ok=False)
        return
    before = (home / "state.json").read_bytes()
    result = CliRunner().invoke(
        app, [*path, *base, opt, value, "--home", str(home)] if path != ("bench",) else [*path, *base, opt, value]
    )
    _check(
        result, f"{' '.join(path)} {opt} {value}", before, home, allow_ok=(path, opt) in HUGE_OK and value == HUGE_INT
    )
    if result.exit_code == 1:
        assert opt.lstrip("-").replace("-", "_") in result.stderr.replace("-", "_") or opt in result.stderr, (
            result.stderr
        )


@pytest.mark.parametrize("command", ["status", "doctor", "tasks list"])
@pytest.mark.parametrize("value", [*BAD, HUGE_FLOAT])
def test_wait_refuses_bad_values_as_option_and_variable(home: Path, value: str, command: str):
    before = (home / "state.json").read_bytes()
    result = CliRunner().invoke(app, ["--wait", value, *command.split(), "--home", str(home)])
    _check(result, f"--wait {value}", before, home, allow_ok=False)
    assert "wait" in result.stderr
    result = CliRunner().invoke(app, [*command.split(), "--home", str(home)], env={"AGENT_IL_WAIT": value})
    _check(result, f"AGENT_IL_WAIT={value}", before, home, allow_ok=False)
    assert "AGENT_IL_WAIT" in result.stderr
