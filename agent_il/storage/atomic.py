"""Crash-safe file writes: readers see the old bytes or the new ones, never a torn file."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX needs the directory itself synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, commit_point: bool = False) -> None:
    """Write ``data`` to ``path`` via temp file + fsync + rename + directory fsync. At a
    ``commit_point`` (the state a commit publishes) the rename is the commit: a failure to sync
    the directory after it is logged, not raised, since the new state is in force and a caller
    that took it for a failure would undo what that state names."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        if not commit_point:
            raise
        _log.warning("%s is written; syncing its directory failed (%s): it may not survive a power loss", path, exc)


def write_json(path: Path, obj: Any, indent: int | None = 2, commit_point: bool = False) -> None:
    data = (json.dumps(obj, indent=indent, ensure_ascii=False) + "\n").encode()
    write_bytes(path, data, commit_point=commit_point)


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Delete temp files a killed writer left behind; returns what was removed."""
    removed = []
    for tmp in Path(directory).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
