"""Numbers derived from what the engine captured, for panes and exports to show."""

from __future__ import annotations

import numpy as np


def cosine_similarity(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity between every pair of rows of `vectors` [T, C]: [T, T].

    A zero vector has similarity 0 with everything, itself included.
    """
    v = vectors.astype(np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)  # [T, 1]
    unit = v / np.where(norms == 0, 1.0, norms)
    return unit @ unit.T
