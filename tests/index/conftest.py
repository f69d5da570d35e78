"""Random unit embeddings and a brute-force oracle for the index tests."""

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

UnitVectors = Callable[[int, int], NDArray[np.float32]]
TopK = Callable[
    [NDArray[np.float32], NDArray[np.int64], NDArray[np.float32], int],
    list[list[tuple[int, float]]],
]


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so failures reproduce."""
    return np.random.default_rng(20240611)


@pytest.fixture
def unit_vectors(rng: np.random.Generator) -> UnitVectors:
    """Factory for (n, dim) float32 rows of unit length, like real embeddings."""

    def make(n: int, dim: int) -> NDArray[np.float32]:
        raw = rng.standard_normal((n, dim)).astype(np.float32)
        return raw / np.linalg.norm(raw, axis=1, keepdims=True)

    return make


@pytest.fixture
def numpy_top_k() -> TopK:
    """Exact top-k by inner product, computed with numpy as the oracle."""

    def top_k(
        gallery: NDArray[np.float32],
        ids: NDArray[np.int64],
        queries: NDArray[np.float32],
        k: int,
    ) -> list[list[tuple[int, float]]]:
        similarities = queries.astype(np.float64) @ gallery.astype(np.float64).T
        order = np.argsort(-similarities, axis=1, kind="stable")[:, :k]
        return [
            [(int(ids[j]), float(similarities[row, j])) for j in order[row]]
            for row in range(queries.shape[0])
        ]

    return top_k
