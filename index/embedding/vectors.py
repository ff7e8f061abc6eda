"""Compact storage of sentence vectors in passage metadata: int8 with a scale per vector.

Cosine similarity survives this quantisation to about 0.01, and a passage's sentence
vectors fit in a few kilobytes of Chroma metadata, so every process sharing the store has
them without re-encoding anything at question time.
"""

from __future__ import annotations

import base64

import numpy as np

# The passage metadata key holding its sentences' packed vectors.
SENTENCE_VECTORS = "sentence_vectors"


def pack(vectors: np.ndarray) -> str:
    vectors = np.asarray(vectors, dtype=np.float32)
    scales = np.abs(vectors).max(axis=1, keepdims=True) / 127.0
    scales[scales == 0] = 1.0
    codes = np.round(vectors / scales).astype(np.int8)
    header = np.array(vectors.shape, dtype=np.int32).tobytes()
    payload = header + scales.astype(np.float32).tobytes() + codes.tobytes()
    return base64.b64encode(payload).decode("ascii")


def unpack(text: str) -> np.ndarray:
    """The vectors, unit length, as float32 rows."""
    payload = base64.b64decode(text)
    rows, dim = np.frombuffer(payload[:8], dtype=np.int32)
    scales = np.frombuffer(payload[8 : 8 + 4 * rows], dtype=np.float32).reshape(rows, 1)
    codes = np.frombuffer(payload[8 + 4 * rows :], dtype=np.int8).reshape(rows, dim)
    vectors = codes.astype(np.float32) * scales
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms
