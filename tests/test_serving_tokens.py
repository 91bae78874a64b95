"""Bearer tokens: made once, stored as hashes, scoped, revoked; the CLI that manages them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_il.cli import app
from agent_il.errors import InvalidInputError, WorkspaceError
from agent_il.serving.tokens import TokenStore, scope_allows


def test_a_token_is_shown_once_and_stored_as_its_hash(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("bot", "learn")
    text = (tmp_path / "tokens.json").read_text()
    assert token.startswith("ail_") and len(token) > 40 and token not in text
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert store.verify(token).name == "bot"
    assert store.verify(token + "x") is None and store.verify("") is None
    other = TokenStore(tmp_path / "tokens.json")  # another process: a server reading the file
    assert other.verify(token).scope == "learn"
    store.revoke("bot")
    assert other.verify(token) is None  # the file changed: read again


def test_bad_names_scopes_and_files_are_refused_and_change_nothing(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.create("a", "read")
    before = (tmp_path / "tokens.json").read_bytes()
    for name, scope in (("a", "read"), ("a b", "read"), ("", "read"), ("x" * 65, "read"), ("b", "root")):
        with pytest.raises(InvalidInputError):
            store.create(name, scope)
    with pytest.raises(InvalidInputError, match="no token named 'zz'"):
        store.revoke("zz")
    assert (tmp_path / "tokens.json").read_bytes() == before
    (tmp_path / "tokens.json").write_text("{not json")
    with pytest.raises(WorkspaceError, match="damaged token file"):
        TokenStore(tmp_path / "tokens.json").tokens()


def test_scopes_include_the_lower_ones() -> None:
    assert scope_allows("admin", "learn") and scope_allows("learn", "read") and scope_allows("read", "read")
    assert not scope_allows("read", "learn") and not scope_allows("learn", "admin")


def test_token_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    home = tmp_path / "kb"
    home.mkdir()
    plain = runner.invoke(app, ["token", "create", "ci", "--home", str(home)])  # a directory, not a workspace
    assert plain.exit_code == 1 and plain.output.startswith(f"error: no workspace at {home}")
    assert not (home / "tokens.json").exists()
    assert runner.invoke(app, ["init", "--home", str(home)]).exit_code == 0
    made = runner.invoke(app, ["token", "create", "ci", "--scope", "admin", "--home", str(home), "--json"])
    assert made.exit_code == 0, made.output
    token = json.loads(made.stdout)["token"]
    listed = runner.invoke(app, ["token", "list", "--home", str(home), "--json"])
    assert json.loads(listed.stdout)["tokens"][0]["scope"] == "admin" and token not in listed.output
    own = tmp_path / "elsewhere.json"
    assert runner.invoke(app, ["token", "create", "x", "--tokens", str(own)]).exit_code == 0 and own.exists()
    bad = runner.invoke(app, ["token", "create", "y", "--scope", "root", "--home", str(home)])
    assert bad.exit_code == 1 and bad.output.strip().startswith("error: scope must be one of")
    missing = runner.invoke(app, ["token", "list", "--home", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no workspace at" in missing.output
    server = runner.invoke(app, ["--chroma-url", "http://127.0.0.1:9", "token", "list"])
    assert server.exit_code == 1 and "--tokens" in server.output
    assert runner.invoke(app, ["token", "revoke", "ci", "--home", str(home)]).exit_code == 0
    assert TokenStore(home / "tokens.json").verify(token) is None


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """``agent-il serve http`` over ``tmp_path/kb``, a directory that is no workspace: it stops at
    opening it, after deciding on authentication. The exit code and the output's lines."""
    home = tmp_path / "kb"
    home.mkdir(exist_ok=True)
    result = CliRunner().invoke(app, ["serve", "http", "--home", str(home), *args], env=env)
    return result.exit_code, result.output.strip().splitlines()


def test_a_named_token_file_that_is_missing_or_empty_is_an_error(tmp_path: Path) -> None:
    typo = tmp_path / "tokns.json"
    code, lines = _serve(tmp_path, "--tokens", str(typo))
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"error: --tokens: no such file {typo}")
    code, lines = _serve(tmp_path, env={"AGENT_IL_TOKENS": str(typo)})
    assert code == 1 and len(lines) == 1 and "no such file" in lines[0]
    empty = tmp_path / "empty.json"
    TokenStore(empty).create("gone", "read")
    TokenStore(empty).revoke("gone")
    code, lines = _serve(tmp_path, "--tokens", str(empty), "--host", "0.0.0.0")
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"error: --tokens: no tokens in {empty}")
    code, lines = _serve(tmp_path, "--tokens", str(typo), "--no-auth")  # the operator's explicit choice
    assert code == 1 and "WARNING: serving 127.0.0.1 without authentication" in lines[0]
    assert "no workspace at" in lines[-1]


def test_a_workspace_token_file_keeps_authentication_on_with_every_token_revoked(tmp_path: Path) -> None:
    code, lines = _serve(tmp_path)  # no token file was ever made: off, and said so
    assert code == 1 and "WARNING: serving 127.0.0.1 without authentication" in lines[0]
    store = TokenStore(tmp_path / "kb" / "tokens.json")
    store.create("ops", "read")
    store.revoke("ops")
    code, lines = _serve(tmp_path, "--host", "0.0.0.0")  # on: no refusal to bind, no warning
    assert code == 1 and lines == [lines[-1]] and "no workspace at" in lines[-1], lines
    code, lines = _serve(tmp_path, "--no-auth")
    assert "WARNING: serving 127.0.0.1 without authentication" in lines[0]
