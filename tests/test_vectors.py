"""Sentence vectors stored as int8 keep their directions."""

from __future__ import annotations

import numpy as np

from index.embedding.vectors import pack, unpack


def test_pack_round_trip_keeps_cosine() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    restored = unpack(pack(vectors))

    assert restored.shape == (7, 384)
    cosines = (restored * vectors).sum(axis=1)
    assert cosines.min() > 0.999


def test_zero_vector_survives() -> None:
    assert np.allclose(unpack(pack(np.zeros((1, 4)))), 0)
