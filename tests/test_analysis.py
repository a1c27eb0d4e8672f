"""Derived numbers: cosine similarity of embeddings."""

import numpy as np

from stepper.analysis import cosine_similarity


def test_cosine_similarity_of_known_vectors():
    v = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [0.0, 0.0]], np.float32)
    s = cosine_similarity(v)
    assert s.shape == (4, 4)
    np.testing.assert_allclose(np.diag(s)[:3], 1.0)
    assert s[0, 1] == 0.0 and s[3, 3] == 0.0
    np.testing.assert_allclose(s[0, 2], np.sqrt(0.5))
    np.testing.assert_allclose(s, s.T)
