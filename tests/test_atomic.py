from __future__ import annotations

import os

import pytest

from agent_il.storage import atomic


def test_write_replaces_whole_file(tmp_path):
    target = tmp_path / "state.json"
    atomic.write_json(target, {"a": 1})
    atomic.write_json(target, {"a": 2})
    assert target.read_text().strip().replace(" ", "").replace("\n", "") == '{"a":2}'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_failed_rename_keeps_old_bytes_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "w.bin"
    atomic.write_bytes(target, b"old")

    def boom(src, dst):
        raise OSError("injected")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["w.bin"]


def test_stale_temp_files_are_removed(tmp_path):
    (tmp_path / ".state.json.abc.tmp").write_text("half")
    (tmp_path / "keep.txt").write_text("x")
    assert len(atomic.remove_stale_temp_files(tmp_path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
