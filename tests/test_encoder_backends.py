"""Every encoder backend through one suite, the ONNX export's checks (damaged, stale, tampered:
rebuilt, never trusted), workspaces tied to their backend, and predicts that import no torch."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent_il import Encoder, IntentLearner, ModelMismatchError
from agent_il.cli import app
from agent_il.config import BACKENDS
from agent_il.encoding import export
from agent_il.errors import InvalidInputError

HEAVY = ("torch", "transformers", "sentence_transformers")


@pytest.fixture(scope="module", params=BACKENDS)
def backend_encoder(request: pytest.FixtureRequest) -> Encoder:
    return Encoder(backend=request.param)


def test_every_backend_keeps_the_encoder_contract(backend_encoder: Encoder) -> None:
    texts = ["i was charged twice", "  Book me a TABLE for two  ", "x", "word " * 2000]
    x = backend_encoder.encode(texts)
    assert x.shape == (4, backend_encoder.dim) == (4, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    alone = np.stack([Encoder(backend=backend_encoder.backend).encode([t])[0] for t in texts])
    assert np.allclose(alone, x, atol=1e-5)  # a text's vector does not depend on its batch or order
    assert backend_encoder.encode([]).shape == (0, 384)
    assert (backend_encoder.backend in backend_encoder.cache_id) == (backend_encoder.backend != "torch")


def test_onnx_agrees_with_sentence_transformers_on_every_clinc150_test_text(clinc) -> None:
    texts = [t for t, _ in clinc.data["test"]] + [t for t, _ in clinc.data["oos_test"]]
    torch_x = Encoder(backend="torch", memory_items=0).encode(texts)
    onnx_x = Encoder(backend="onnx", memory_items=0).encode(texts)
    cosine = (torch_x * onnx_x).sum(1)
    assert len(texts) == 5500 and cosine.min() >= 0.9999, cosine.min()
    int8 = (Encoder(backend="onnx-int8", memory_items=0).encode(texts[:500]) * torch_x[:500]).sum(1)
    assert 0.97 < int8.min() < 0.9999 and int8.mean() > 0.995  # close, and really quantised


def test_auto_is_onnx_on_the_cpu_and_a_workspace_keeps_its_own(tmp_path: Path, encoder: Encoder) -> None:
    assert Encoder().backend == "onnx"
    with IntentLearner.open(tmp_path / "torch", encoder=Encoder(backend="torch")) as made:
        made.learn(["hi there", "hello", "bye now", "goodbye"], ["greet", "greet", "bye", "bye"])
    auto = Encoder()  # auto: takes the workspace's backend, whatever auto would pick for a new one
    with IntentLearner.open(tmp_path / "torch", encoder=auto) as reopened:
        assert reopened.config.backend == "torch" == auto.backend
        assert reopened.predict(["hello you"], inbox=False)[0].top_k[0][0] == "greet"
    with IntentLearner.open(tmp_path / "torch") as reopened:
        assert reopened.encoder.backend == "torch"
    with pytest.raises(ModelMismatchError, match="torch backend, not onnx"):
        IntentLearner.open(tmp_path / "torch", encoder=Encoder(backend="onnx"))
    with pytest.raises(ModelMismatchError, match="torch backend, not onnx-int8"):
        IntentLearner.open(tmp_path / "torch", backend="onnx-int8")
    with pytest.raises(InvalidInputError, match="unknown backend 'fast'"):
        Encoder(backend="fast")


def test_the_export_is_checked_and_rebuilt_when_damaged_stale_or_tampered(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_id = str(tiny_model)
    first = export.ensure(model_id, "onnx", root=tmp_path)
    folder = first.folder
    assert folder.parent == tmp_path / "onnx" and first.meta["dim"] == 32
    assert export.ensure(model_id, "onnx", root=tmp_path).model == first.model  # reused as it is

    damaged = bytearray(first.model)
    damaged[len(damaged) // 2] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, "agent_il"):
        again = export.ensure(model_id, "onnx", root=tmp_path)
    assert "does not match its checksum" in caplog.text and again.model != bytes(damaged)

    meta = (folder / "meta.json").read_text()
    (folder / "meta.json").write_text(meta.replace('"dim": 32', '"dim": 33'))
    caplog.clear()
    with caplog.at_level(logging.WARNING, "agent_il"):
        assert export.ensure(model_id, "onnx", root=tmp_path).meta["dim"] == 32
    assert "meta.json is damaged" in caplog.text

    before = Encoder(model_id, backend="onnx").encode(["the weights change"])
    changed = Path(model_id) / "2_Normalize"  # a module folder the model loads from
    (changed / "touched").write_text("new")
    caplog.clear()
    with caplog.at_level(logging.WARNING, "agent_il"):
        stale = export.ensure(model_id, "onnx", root=tmp_path)
    assert "stale" in caplog.text and "2_Normalize/touched" in stale.meta["sources"]
    (changed / "touched").unlink()
    assert np.allclose(Encoder(model_id, backend="onnx").encode(["the weights change"]), before, atol=1e-6)


def test_a_model_that_cannot_load_cannot_export(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    with pytest.raises(Exception, match="could not load encoder model"):
        export.ensure(str(tmp_path / "broken"), "onnx", root=tmp_path)
    assert not list((tmp_path / "onnx").iterdir())  # nothing half-made left


def test_another_model_on_onnx_matches_its_torch_run(tiny_model: Path, clinc) -> None:
    texts = [t for t, _ in clinc.data["test"][:300]]
    a = Encoder(tiny_model, backend="torch").encode(texts)
    b = Encoder(tiny_model, backend="onnx").encode(texts)
    assert b.shape == (300, 32) and (a * b).sum(1).min() >= 0.9999


def _learned(path: Path, clinc, encoder: Encoder) -> None:
    texts, labels = clinc.split("train", clinc.tasks[0])
    with IntentLearner.open(path, encoder=encoder) as learner:
        assert learner.config.backend == "onnx"
        learner.learn(texts, labels, task="first", holdout=0.1)


def test_a_predict_on_an_onnx_workspace_imports_no_torch(tmp_path: Path, clinc, encoder: Encoder) -> None:
    _learned(tmp_path / "kb", clinc, encoder)
    expected = IntentLearner.open(tmp_path / "kb")
    want = [(p.label, round(p.confidence, 5)) for p in expected.predict(["how do i say hello in french"], inbox=False)]
    expected.close()
    script = f"""
import json, sys
from agent_il import IntentLearner
from agent_il.cli import main
with IntentLearner.open({str(tmp_path / "kb")!r}, create=False) as learner:
    got = [(p.label, round(p.confidence, 5)) for p in learner.predict(["how do i say hello in french"], inbox=False)]
sys.argv = ["agent-il", "predict", "tell me a joke", "--home", {str(tmp_path / "kb")!r}, "--json"]
try:
    main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps({{"got": got, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["heavy"] == []
    assert [tuple(g) for g in found["got"]] == want


def test_init_takes_a_backend(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["init", "--home", str(tmp_path / "kb"), "--backend", "onnx-int8"])
    assert made.exit_code == 0, made.output
    assert "backend onnx-int8" in made.output
    shown = runner.invoke(app, ["status", "--home", str(tmp_path / "kb"), "--json"])
    assert json.loads(shown.output)["backend"] == "onnx-int8"
    bad = runner.invoke(app, ["init", "--home", str(tmp_path / "other"), "--backend", "gpu"])
    assert bad.exit_code != 0 and "unknown backend 'gpu'" in bad.output and not (tmp_path / "other").exists()
