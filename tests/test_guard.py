"""The command line never shows a traceback: whatever goes wrong, one line ``error: ...`` on
stderr, chosen by the kind of error, and exit status 1 (``--debug`` adds the traceback). Every
command goes through that guard. The faults themselves (disk full, read-only workspace, a Chroma
server that dies) are in tests/test_faults_io.py."""

from __future__ import annotations

import errno
import sqlite3

import httpx
import pytest
import typer
from typer.testing import CliRunner

from agent_il.cli import context
from agent_il.cli.app import app
from agent_il.cli.context import guarded
from agent_il.errors import WorkspaceError


@pytest.fixture(autouse=True)
def no_debug(monkeypatch):
    """--debug is a per-invocation switch the root callback sets; these small apps have no root."""
    monkeypatch.setattr(context, "_debug", False)
    monkeypatch.delenv("AGENT_IL_DEBUG", raising=False)


def leaf_commands(cmd, path=()):
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from leaf_commands(sub, (*path, name))
    else:
        yield " ".join(path), cmd.callback


def original(callback):
    """The function the command module registered (Typer wraps it in a closure of its own)."""
    for cell in callback.__closure__ or ():
        value = cell.cell_contents
        if callable(value) and getattr(value, "__module__", "").startswith("agent_il.cli.commands"):
            return value
    return callback


def test_every_command_goes_through_the_guard():
    commands = dict(leaf_commands(typer.main.get_command(app)))
    assert {"learn", "doctor", "serve", "intents rename", "snapshot restore", "inbox learn"} <= set(commands)
    unguarded = [name for name, cb in commands.items() if not getattr(original(cb), "__guarded__", False)]
    assert unguarded == []


def one_command(exc: BaseException) -> typer.Typer:
    small = typer.Typer()

    @small.command()
    @guarded
    def boom() -> None:
        raise exc

    return small


CASES = [
    (WorkspaceError("no workspace at /x;\n create one"), "error: no workspace at /x; create one"),
    (
        OSError(errno.ENOSPC, "No space left on device", "/kb/state.json"),
        "error: disk full (writing /kb/state.json): nothing was committed",
    ),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "error: disk full: nothing was committed"),
    (PermissionError(errno.EACCES, "Permission denied", "/kb/.lock"), "error: permission denied (/kb/.lock)"),
    (OSError(errno.EROFS, "Read-only file system", "/kb/state.json"), "error: read-only file system (/kb/state.json)"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/kb/x"), "error: No such file or directory (/kb/x)"),
    (httpx.ConnectError("All connection attempts failed"), "error: lost the Chroma server at"),
    (httpx.RemoteProtocolError("Server disconnected"), "error: lost the Chroma server at"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "error: lost the Chroma server at"),
    (sqlite3.DatabaseError("file is not a database"), "error: damaged file: file is not a database"),
    (MemoryError(), "error: out of memory"),
    (ValueError("bad\nthing"), "error: internal error (ValueError: bad thing); run with --debug for the traceback"),
    (RuntimeError(), "error: internal error (RuntimeError); run with --debug"),
]


@pytest.mark.parametrize(("exc", "expected"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_each_kind_of_error_is_one_line_and_exit_1(exc, expected):
    result = CliRunner().invoke(one_command(exc), [])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_sqlite_and_chroma_errors_by_their_codes(monkeypatch):
    import chromadb.errors

    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    readonly = sqlite3.OperationalError("attempt to write a readonly database")
    readonly.sqlite_errorcode = 8  # type: ignore[attr-defined]
    corrupt = sqlite3.DatabaseError("database disk image is malformed")
    corrupt.sqlite_errorcode = 11  # type: ignore[attr-defined]
    cases = [
        (full, "error: disk full"),
        (readonly, "error: cannot write the database"),
        (corrupt, "error: damaged file: database disk image is malformed"),
        (chromadb.errors.InternalError("error returned from database: (code: 11) malformed"), "error: damaged file"),
        (chromadb.errors.InternalError("error returned from database: database or disk is full"), "error: disk full"),
        (chromadb.errors.InternalError("something else"), "error: Chroma failed: something else"),
    ]
    for exc, expected in cases:
        result = CliRunner().invoke(one_command(exc), [])
        assert result.exit_code == 1 and result.stderr.startswith(expected), (exc, result.stderr)
        assert result.stderr.count("\n") == 1


def test_ctrl_c_and_clicks_own_errors_keep_their_handling():
    result = CliRunner().invoke(one_command(KeyboardInterrupt()), [])
    assert result.exit_code == 130 and "interrupted" in result.stderr
    result = CliRunner().invoke(one_command(typer.BadParameter("nope")), [])
    assert result.exit_code == 2 and "nope" in result.output
    result = CliRunner().invoke(one_command(typer.Exit(3)), [])
    assert result.exit_code == 3 and result.output == ""


def test_debug_adds_the_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("AGENT_IL_DEBUG", raising=False)
    missing = str(tmp_path / "missing")
    plain = CliRunner().invoke(app, ["status", "--home", missing])
    assert plain.exit_code == 1 and plain.stderr == f"error: no workspace at {missing}; create one with: " + (
        f"agent-il init --home {missing}\n"
    )
    for args, env in ((["--debug"], {}), ([], {"AGENT_IL_DEBUG": "1"})):
        debug = CliRunner().invoke(app, [*args, "status", "--home", missing], env=env)
        assert debug.exit_code == 1
        first, rest = debug.stderr.split("\n", 1)
        assert first == plain.stderr.strip()
        assert rest.startswith("Traceback (most recent call last):") and "WorkspaceError" in rest
    # the option is per invocation: the next one without it has no traceback again
    again = CliRunner().invoke(app, ["status", "--home", missing])
    assert again.stderr == plain.stderr


def test_an_unexpected_error_in_a_real_command_is_one_line(tmp_path, monkeypatch):
    from agent_il.cli.commands import workspace

    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(workspace, "open_learner", broken)
    result = CliRunner().invoke(app, ["status", "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == "error: internal error (KeyError: 'surprise'); run with --debug for the traceback\n"
    result = CliRunner().invoke(app, ["--debug", "status", "--home", str(tmp_path)])
    assert "Traceback" in result.stderr and "KeyError: 'surprise'" in result.stderr


def test_a_store_error_on_a_full_disk_is_named_disk_full(tmp_path, monkeypatch):
    """Chroma often reports a full disk only as a failed compaction: the guard looks at the
    workspace's disk."""
    import shutil
    from collections import namedtuple

    import chromadb.errors

    small = typer.Typer()

    @small.command()
    @guarded
    def learn(ctx: typer.Context, home: context.Home = None) -> None:
        raise chromadb.errors.InternalError("Error in compaction: Failed to apply logs to the metadata segment")

    result = CliRunner().invoke(small, ["--home", str(tmp_path / "kb")])
    assert result.stderr.startswith("error: Chroma failed: Error in compaction"), result.stderr
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100, 100, 0))
    result = CliRunner().invoke(small, ["--home", str(tmp_path / "kb")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: disk full (Error in compaction"), result.stderr
    assert "nothing was committed" in result.stderr and result.stderr.count("\n") == 1
