"""The ONNX Runtime backend: the model's export (:mod:`agent_il.encoding.export`) run with the
``tokenizers`` library, with no torch, transformers or sentence-transformers in the process."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from agent_il.encoding import export
from agent_il.encoding.base import Backend
from agent_il.errors import WorkspaceError

SUB_BATCH = 16


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxBackend(Backend):
    def __init__(self, model_id: str, name: str) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.name = name
        found = export.ensure(model_id, name)
        meta = found.meta
        self.inputs, self._lower, self._dim = meta["inputs"], meta["do_lower_case"], int(meta["dim"])
        self.tokenizer = Tokenizer.from_file(str(found.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(meta["max_seq_length"]))
        self.tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=str(meta["pad_token"]))
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # no graph-optimisation notices on stderr
        # Spinning threads after a run keep the cores busy through the head's own arithmetic.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # One thread a run, and sub-batches run side by side on the cores: MiniLM's small matrices
        # split across threads poorly. 2,000 CLINC150 queries on 2 cores: fp32 4.5 s -> 3.5 s, int8
        # (a text a run) 7.3 s -> 4.0 s; one query costs about 0.5 ms more on one thread.
        options.intra_op_num_threads = 1
        self._workers = _cores()
        self._pool: ThreadPoolExecutor | None = None
        try:
            self.session = onnxruntime.InferenceSession(found.model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a graph this ONNX Runtime cannot run
            raise WorkspaceError(f"ONNX Runtime cannot load the export in {found.folder}: {exc}") from exc

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        if self.name == "onnx-int8":
            # Dynamic quantisation scales activations by the whole batch (padding included), so a
            # text's int8 vector would depend on its neighbours: each text runs alone, the cores side by side.
            batch_size = 1
        # Batches sorted by length and at most SUB_BATCH long pad little: 2,000 CLINC150 queries
        # sent 64 at a time took 4.5 s in batches of 16 and 6.2 s in batches of 64.
        # A call of a few texts is split evenly over the cores (20 texts: two runs of 10 took 83 ms,
        # 16 and 4 took 122 ms).
        batch_size = max(1, min(batch_size, SUB_BATCH, -(-len(texts) // self._workers)))
        prepared = [t.strip().lower() if self._lower else t.strip() for t in texts]
        # Batches of similar lengths pad little, as sentence-transformers sorts them.
        order = sorted(range(len(prepared)), key=lambda i: -len(prepared[i]))
        out = np.empty((len(prepared), self._dim), dtype=np.float32)

        def run(rows: list[int]) -> None:
            encoded = self.tokenizer.encode_batch([prepared[i] for i in rows])
            feed = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            }
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = np.array([e.type_ids for e in encoded], dtype=np.int64)
            vectors = self.session.run(None, {k: feed[k] for k in self.inputs})[0]
            out[rows] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)

        batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
        if len(batches) <= 1 or self._workers == 1:
            for rows in batches:
                run(rows)
        else:  # ONNX Runtime and tokenizers release the GIL while they work
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="agent-il-onnx")
            for _ in self._pool.map(run, batches):  # re-raises a worker's error here
                pass
        return out
