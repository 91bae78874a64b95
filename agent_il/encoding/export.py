"""ONNX exports of sentence-transformers models, made once per model in the user cache.

An export is a directory: ``model.onnx`` (the model's whole sentence-transformers pipeline:
transformer, pooling, any dense layer and normalisation, traced from the library itself, so the
pooling is its own), ``tokenizer.json`` and ``meta.json``, sealed, naming the SHA-256 of both files
and of every source file it was made from. Loading checks them all: a damaged or stale export is
built again, never trusted. Only building one needs torch (and the ``onnx`` package)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_il.encoding.base import resolve_model_location
from agent_il.encoding.cache import user_cache
from agent_il.errors import DamagedError, WorkspaceError
from agent_il.storage.atomic import fsync_dir, write_bytes
from agent_il.storage.blobs import sealed, unsealed

log = logging.getLogger("agent_il")
FORMAT = 3  # bump when the export itself changes: every cached export is then made again
OPSET = 17
VARIANTS = {"onnx": "fp32", "onnx-int8": "int8"}
FILES = ("model.onnx", "tokenizer.json")


@dataclass(frozen=True)
class Export:
    """A checked export: where its files are, the model bytes as read (hashed once, handed to ONNX
    Runtime as they are) and what running it needs (input names, lengths, text preparation)."""

    folder: Path
    model: bytes
    meta: dict[str, Any]


def folder_of(model_id: str, backend: str, root: Path | None = None) -> Path:
    key = hashlib.sha256(f"{model_id}\0{VARIANTS[backend]}\0{FORMAT}".encode()).hexdigest()[:16]
    return (root or user_cache()) / "onnx" / f"{key}-{VARIANTS[backend]}"


def ensure(model_id: str, backend: str, root: Path | None = None) -> Export:
    """The checked export of ``model_id`` for ``backend`` (``onnx``, ``onnx-int8``), made first if
    it is missing, damaged or older than its source files."""
    source = source_folder(model_id)
    folder = folder_of(model_id, backend, root)
    known = _read_meta(folder)
    sources = source_digests(source, (known or {}).get("sources", {}))
    if known is not None:
        try:
            return _checked(folder, known, sources)
        except DamagedError as exc:
            log.warning("%s; exporting the model again", exc)
    _build(model_id, backend, source, sources, folder)
    meta = _read_meta(folder)
    if meta is None:
        raise WorkspaceError(f"the ONNX export in {folder} could not be read back")
    return _checked(folder, meta, sources)


def source_folder(model_id: str) -> Path:
    """The local directory the model loads from (a hub name: its copy in the Hugging Face cache)."""
    location = Path(resolve_model_location(model_id))
    if location.is_dir():
        return location
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception as exc:  # not in the local hub cache: nothing to export from, offline
        raise WorkspaceError(f"cannot export {model_id!r} to ONNX: no local copy of it ({exc})") from exc


def source_digests(folder: Path, known: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``{path: [size, mtime_ns, sha256]}`` of the files the model loads: top-level files and its
    modules' folders. A file whose size and mtime match ``known`` keeps its digest there (as a
    build tool's stamp), so an unchanged model is not read whole at every start."""
    wanted = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    modules = folder / "modules.json"
    if modules.is_file():
        try:
            paths = [m.get("path") for m in json.loads(modules.read_text())]
        except (ValueError, AttributeError) as exc:
            raise WorkspaceError(f"{modules} is not valid: {exc}") from exc
        for sub in (folder / p for p in paths if p):
            if sub.is_dir():
                wanted += [p for p in sub.rglob("*") if p.is_file()]
    out: dict[str, list[Any]] = {}
    for path in sorted(wanted):
        stat, name = path.stat(), str(path.relative_to(folder))
        old = known.get(name)
        if old is not None and old[:2] == [stat.st_size, stat.st_mtime_ns]:
            out[name] = old
        else:
            with path.open("rb") as f:
                out[name] = [stat.st_size, stat.st_mtime_ns, hashlib.file_digest(f, "sha256").hexdigest()]
    return out


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        text = (folder / "meta.json").read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read %s (%s); exporting the model again", folder / "meta.json", exc)
        return None
    try:
        return unsealed(text, str(folder / "meta.json"))
    except DamagedError as exc:
        log.warning("%s; exporting the model again", exc)
        return None


def _checked(folder: Path, meta: dict[str, Any], sources: dict[str, list[Any]]) -> Export:
    if meta.get("format") != FORMAT:
        raise DamagedError(f"the ONNX export in {folder} is of another format")
    if {k: d[2] for k, d in meta.get("sources", {}).items()} != {k: d[2] for k, d in sources.items()}:
        raise DamagedError(f"the ONNX export in {folder} is stale: its model's files changed")
    data = {}
    for name in FILES:
        try:
            data[name] = (folder / name).read_bytes()
        except OSError as exc:
            raise DamagedError(f"the ONNX export in {folder} is incomplete: {exc}") from exc
        if hashlib.sha256(data[name]).hexdigest() != meta["files"].get(name):
            raise DamagedError(f"{folder / name} is damaged: its content does not match its checksum")
    return Export(folder, data["model.onnx"], meta)


def _build(model_id: str, backend: str, source: Path, sources: dict[str, list[Any]], folder: Path) -> None:
    """Export into a fresh directory beside ``folder``, then put it in place by renaming: a reader
    sees the old export or the new one; of two processes exporting at once, one rename wins."""
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        meta = _export(model_id, backend, work)
        meta["sources"] = sources
        write_bytes(work / "meta.json", sealed(meta).encode())
        if folder.exists():
            try:  # another process may have put a good export there meanwhile: keep it
                _checked(folder, _read_meta(folder) or {}, sources)
                return
            except DamagedError:
                pass
            old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(folder, old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(work, folder)
        except OSError:  # another process put its export in place first: use that one
            if _read_meta(folder) is None:
                raise
        fsync_dir(folder.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export(model_id: str, backend: str, work: Path) -> dict[str, Any]:
    """Trace the model into ``work/model.onnx`` (quantised for int8) and write its tokenizer."""
    import torch

    from agent_il.encoding.sbert import load_sentence_transformer

    log.info("exporting %s to ONNX (%s), once", model_id, VARIANTS[backend])
    st = load_sentence_transformer(model_id, "cpu")
    first = st[0]
    tokenizer = getattr(first, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise WorkspaceError(f"cannot export {model_id!r} to ONNX: it has no fast (Rust) tokenizer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        features = st.tokenize(["a short text", "and a somewhat longer sentence to trace the graph with"])
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features]

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.st(dict(zip(names, inputs)))["sentence_embedding"]

    fp32 = work / "fp32.onnx"
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on constant shapes: checked by the tests
            torch.onnx.export(
                Pipeline().eval(),
                tuple(features[n] for n in names),
                str(fp32),
                input_names=names,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        if VARIANTS[backend] == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(
                str(fp32),
                str(work / "model.onnx"),
                weight_type=QuantType.QInt8,
                per_channel=True,  # mean cosine to fp32 on CLINC150: 0.994 per channel, 0.965 per tensor
                nodes_to_exclude=_down_projections(fp32),
            )
            fp32.unlink()
        else:
            fp32.rename(work / "model.onnx")
    except WorkspaceError:
        raise
    except Exception as exc:  # the exporter's own errors: an operator it cannot trace, no onnx
        raise WorkspaceError(f"cannot export {model_id!r} to ONNX: {exc}") from exc
    tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
    for name in FILES:
        with (work / name).open("rb+") as f:
            os.fsync(f.fileno())
    return {
        "format": FORMAT,
        "model_id": model_id,
        "variant": VARIANTS[backend],
        "inputs": names,
        "dim": int(st.get_embedding_dimension() or 0),
        "max_seq_length": int(first.max_seq_length),
        "do_lower_case": bool(getattr(first, "do_lower_case", False)),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
        "files": {name: hashlib.sha256((work / name).read_bytes()).hexdigest() for name in FILES},
    }


def _down_projections(path: Path) -> list[str]:
    """The MatMuls whose weight narrows (k x n, k > n: a transformer's feed-forward output, a dense
    pooling layer), kept in fp32: their inputs carry the largest activations, and quantising them
    cost most of int8's error (MiniLM on CLINC150: mean cosine to fp32 0.9964 without them, 0.9936
    with them; the smallest 0.992 and 0.984)."""
    import onnx

    graph = onnx.load(str(path)).graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    narrowing = []
    for node in graph.node:
        weight = shapes.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if weight is not None and len(weight) == 2 and weight[0] > weight[1]:
            narrowing.append(node.name)
    return narrowing
