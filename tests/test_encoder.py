"""The real bundled encoder, offline."""

from __future__ import annotations

import numpy as np
import pytest

from agent_il import Encoder, WorkspaceError
from agent_il.encoding.cache import EmbeddingCache
from agent_il.encoding.encoder import DEFAULT_MODEL, normalise_model_id, resolve_model_location


def test_bundled_default_is_offline_and_normalised(encoder):
    assert encoder.model_id == DEFAULT_MODEL
    x = encoder.encode(["i was charged twice", "book me a table for two"])
    assert x.shape == (2, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_each_text_is_encoded_once(tmp_path):
    enc = Encoder(memory_items=2)
    cache = EmbeddingCache(tmp_path / "c.sqlite", dim=384)
    texts = ["one more time", "second text", "third text"]
    first = enc.encode(texts, cache=cache)
    assert enc.encoded_count == 3 and len(cache) == 3
    again = enc.encode([*texts, texts[0]], cache=cache)  # memo holds only 2: the disk cache serves
    assert enc.encoded_count == 3
    assert np.array_equal(again[:3], first) and np.array_equal(again[3], first[0])


def test_a_local_model_directory_is_accepted(encoder):
    path = resolve_model_location(DEFAULT_MODEL)
    assert normalise_model_id(path) == path
    local = Encoder(path)
    assert np.allclose(local.encode(["hello there"]), encoder.encode(["hello there"]), atol=1e-6)


def test_an_unloadable_model_is_a_clear_error(tmp_path):
    (tmp_path / "broken").mkdir()
    with pytest.raises(WorkspaceError, match="could not load encoder model"):
        Encoder(str(tmp_path / "broken")).encode(["x"])
