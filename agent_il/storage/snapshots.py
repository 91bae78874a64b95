"""Named copies of a workspace's committed states, so a restore brings one back.

A snapshot is a manifest, ``snapshots/<name>.json``: the state (which names every example,
exemplar and held-out record it had, by id) and the SHA-256 of the weights blob it shares with
the workspace. The records themselves stay in their Chroma stores for as long as the live state
or a snapshot names them, so a snapshot costs its manifest only. (Snapshots made before that
also hold ``snapshots/<name>-<id>.safetensors`` and ``.records``, copies of their exemplar and
held-out records; they still load.) A truncated or tampered snapshot is refused with a clear
error, never half-loaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from agent_il.errors import DamagedError, InvalidInputError, WorkspaceError
from agent_il.memory.records import Records
from agent_il.storage.base import Arrays, decode_tensors
from agent_il.storage.blobs import Blobs, sealed, sha256, unsealed

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
AUTO_PREFIX = "auto-"


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created: str
    generation: int
    classes: int
    tasks: int
    exemplars: int
    auto: bool
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInputError(
            f"bad snapshot name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


PREFIX = "snapshots/"


def _manifest_key(name: str) -> str:
    return f"{PREFIX}{check_name(name)}.json"


class Snapshots:
    def __init__(self, blobs: Blobs) -> None:
        self.blobs = blobs
        self._parsed: dict[str, tuple[str, dict[str, Any], str]] = {}  # key -> (digest, manifest, stamp)

    def save(self, name: str, created: str, state: dict[str, Any]) -> SnapshotInfo | None:
        """Save a snapshot of ``state`` (whose weights blob it shares); None if one of that name
        exists or appeared meanwhile (a racing writer's)."""
        key = _manifest_key(name)
        if key in self.blobs.keys(key):
            return None
        manifest = {"name": name, "created": created, "state": state, "files": self._files(state)}
        raw = sealed(manifest).encode()
        if not self.blobs.put(key, raw, exclusive=True):
            return None
        # As if read back (a state's JSON form is plain JSON types): the commit that saved it
        # looks at every manifest right after, and need not read and parse this one again.
        self._parsed[key] = (sha256(raw), manifest, self.blobs.stamp(key))
        return self._info(manifest)

    def rewrite(self, name: str, state: dict[str, Any]) -> None:
        """Replace snapshot ``name``'s state (an erasure took records out of it). Its old record
        copies, if it is an old-style snapshot, go: the state must no longer need them."""
        manifest = self._manifest(name)
        old_files = [k for k in manifest["files"] if k.startswith(PREFIX)]
        manifest = {**manifest, "state": state, "files": self._files(state)}
        self.blobs.put(_manifest_key(name), sealed(manifest).encode())
        for key in old_files:
            self.blobs.delete(key)

    @staticmethod
    def _files(state: dict[str, Any]) -> dict[str, str]:
        return {state["weights"]: state["weights_sha256"]} if state.get("weights") else {}

    def _manifest(self, name: str, listed: bool = False, stored: bool = False) -> dict[str, Any]:
        """Snapshot ``name``'s manifest (``listed``: the name comes from :meth:`names` just now;
        ``stored``: read and checked again, not the copy held in process, which may be the one
        this process wrote: a restore and the doctor check what is stored)."""
        key = _manifest_key(name)
        if not listed and key not in self.blobs.keys(key):
            raise InvalidInputError(f"no snapshot named {name!r}")
        try:
            stamp = self.blobs.stamp(key)
            cached = self._parsed.get(key)
            if not stored and cached is not None and cached[2] == stamp:  # each commit looks at every manifest
                return cached[1]
            self._parsed.pop(key, None)
            raw = self.blobs.get(key)
            text = raw.decode("utf-8")
        except (WorkspaceError, ValueError) as exc:
            raise DamagedError(f"snapshot {name!r} is damaged: {exc}") from exc
        manifest = unsealed(text, f"snapshot {name!r}")
        if not {"name", "created", "state", "files"} <= set(manifest):
            raise DamagedError(f"snapshot {name!r} is damaged: fields missing")
        self._parsed[key] = (sha256(raw), manifest, stamp)
        return manifest

    def _info(self, m: dict[str, Any]) -> SnapshotInfo:
        state = m["state"]
        sizes = 0
        for key in m["files"]:
            try:
                sizes += self.blobs.size(key)
            except (OSError, WorkspaceError):
                pass  # reported as damaged when loaded
        return SnapshotInfo(
            name=m["name"],
            created=m["created"],
            generation=int(state["generation"]),
            classes=len(state["labels"]),
            tasks=len(state["tasks"]),
            exemplars=sum(len(ids) for ids in state["exemplars"].values()),
            auto=m["name"].startswith(AUTO_PREFIX),
            bytes=sizes,
        )

    def names(self) -> list[str]:
        return [k[len(PREFIX) : -len(".json")] for k in self.blobs.keys(PREFIX) if _is_manifest(k)]

    def digest(self, manifest: dict[str, Any]) -> str:
        """The SHA-256 of a manifest as last read."""
        return self._parsed[_manifest_key(manifest["name"])][0]

    def readable(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The manifests that load, and the names of the damaged ones (``doctor`` reports them;
        writes keep whatever they may name)."""
        good, bad = [], []
        for name in self.names():
            try:
                good.append(self._manifest(name, listed=True))
            except WorkspaceError:
                bad.append(name)
        return good, bad

    def manifests(self) -> list[dict[str, Any]]:
        return self.readable()[0]

    def list(self) -> list[SnapshotInfo]:
        found = [self._info(m) for m in self.manifests()]
        return sorted(found, key=lambda s: (s.created, s.generation, s.name))

    def auto_names(self) -> list[str]:
        """Automatic snapshots, oldest first (their names carry a zero-padded generation)."""
        return sorted(n for n in self.names() if n.startswith(AUTO_PREFIX))

    def load(self, name: str) -> tuple[dict[str, Any], Arrays, dict[str, Records]]:
        """Verify every blob against the manifest, then return (state, weights, the record copies
        an old-style snapshot holds: {} for others)."""
        manifest = self._manifest(name, stored=True)
        data = {}
        for key, digest in manifest["files"].items():
            try:
                data[key] = self.blobs.get(key)
            except WorkspaceError:
                raise DamagedError(f"snapshot {name!r} is damaged: {key} is missing") from None
            if sha256(data[key]) != digest:
                raise DamagedError(f"snapshot {name!r} is damaged: {key} does not match its checksum")
        try:
            weights_key = manifest["state"].get("weights")
            weights = decode_tensors(data[weights_key]) if weights_key else {}
            records = {}
            arrays_key = next((k for k in data if k.endswith(".safetensors") and k.startswith(PREFIX)), None)
            if arrays_key is not None:
                arrays = decode_tensors(data[arrays_key])
                meta = json.loads(data[arrays_key.replace(".safetensors", ".records")])
                records = {k: Records(m["ids"], arrays[k], m["texts"], m["metadatas"]) for k, m in meta.items()}
        except Exception as exc:
            raise DamagedError(f"snapshot {name!r} is damaged: {exc}") from exc
        return manifest["state"], weights, records

    def delete(self, name: str) -> None:
        """Delete snapshot ``name``, its manifest first (gone at once for readers); a damaged
        one's files go by their name."""
        try:
            files = [k for k in self._manifest(name)["files"] if k.startswith(PREFIX)]
        except WorkspaceError:
            files = [k for k in self.blobs.keys(f"{PREFIX}{name}-") if not _is_manifest(k)]
        self.blobs.delete(_manifest_key(name))
        for key in files:
            self.blobs.delete(key)

    def tidy(self, min_age: float = 0.0) -> tuple[list[str], set[str]]:
        """One read of the manifests for the cleanup after a write: delete snapshot files no
        manifest names (left by a killed create or delete) once older than ``min_age`` seconds,
        so a create in progress elsewhere is left alone; return them and the weights blobs the
        snapshots still use."""
        manifests, damaged = self.readable()
        named = {k for m in manifests for k in m["files"]}
        theirs = tuple(f"{PREFIX}{name}-" for name in damaged)
        removed = []
        for key in self.blobs.keys(PREFIX):
            if _is_manifest(key) or key in named or key.startswith(theirs):
                continue
            if self.blobs.age(key) >= min_age:
                self.blobs.delete(key)
                removed.append(key)
        return removed, {m["state"]["weights"] for m in manifests if m["state"]["weights"]}


def _is_manifest(key: str) -> bool:
    return key.endswith(".json")
