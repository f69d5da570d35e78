"""The float32 embeddings behind an approximate index, by row, for exact re-ranking.

An approximate structure (HNSW graph, IVF lists) only proposes candidates; the
similarities a search returns are recomputed here from the stored vectors, so
they are the numbers an exact index would give. Rows are the labels the
approximate structure knows; a removed face leaves a tombstone (id -1) in its
row until the owner compacts the store.
"""

import numpy as np
from numpy.typing import NDArray

# Growing by half again keeps appends amortised O(1) without doubling the memory
# of a gallery that is large already.
_GROWTH = 1.5


class ExactStore:
    """Rows of unit float32 vectors, each with its face id or a tombstone."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)
        self._size = 0
        self._rows: dict[int, int] = {}

    @classmethod
    def from_rows(cls, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> "ExactStore":
        """A store holding `vectors` in rows whose ids are `ids` (-1 for a tombstone)."""
        store = cls(int(vectors.shape[1]))
        store._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        store._ids = np.ascontiguousarray(ids, dtype=np.int64)
        store._size = int(ids.size)
        held = enumerate(ids.tolist())
        store._rows = {face_id: row for row, face_id in held if face_id >= 0}
        return store

    @property
    def rows(self) -> int:
        """Rows in use, tombstones included."""
        return self._size

    @property
    def live(self) -> int:
        """Faces held (rows that are not tombstones)."""
        return len(self._rows)

    @property
    def dead(self) -> int:
        """Tombstones waiting for a compaction."""
        return self._size - len(self._rows)

    def __contains__(self, face_id: object) -> bool:
        return face_id in self._rows

    def present(self, ids: list[int]) -> set[int]:
        """Which of `ids` are held."""
        return set(self._rows).intersection(ids)

    def append(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> NDArray[np.int64]:
        """Store `vectors` under `ids` (not yet held) in new rows; return those rows."""
        start, end = self._size, self._size + ids.size
        if end > self._ids.size:
            capacity = max(end, int(self._ids.size * _GROWTH), 1024)
            self._vectors = _grown(self._vectors, capacity)
            self._ids = np.resize(self._ids, capacity)
        self._vectors[start:end] = vectors
        self._ids[start:end] = ids
        self._size = end
        self._rows.update(zip(ids.tolist(), range(start, end), strict=True))
        return np.arange(start, end, dtype=np.int64)

    def kill(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Tombstone the rows of those `ids` that are held; return those rows."""
        rows = [self._rows.pop(face_id) for face_id in ids.tolist() if face_id in self._rows]
        killed = np.asarray(rows, dtype=np.int64)
        self._ids[killed] = -1
        return killed

    def live_ids(self) -> NDArray[np.int64]:
        """Ids held, in row order."""
        ids = self._ids[: self._size]
        return ids[ids >= 0].copy()

    def live_vectors(self) -> NDArray[np.float32]:
        """Vectors held, in row order (the order of `live_ids`)."""
        return np.ascontiguousarray(self._vectors[: self._size][self._ids[: self._size] >= 0])

    def all_rows(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Views of every row in use: ids (-1 for tombstones) and vectors."""
        return self._ids[: self._size], self._vectors[: self._size]

    def compacted(self) -> "ExactStore":
        """A store of the live rows only, renumbered from 0 in the same order."""
        return ExactStore.from_rows(self.live_ids(), self.live_vectors())

    def rerank(
        self, queries: NDArray[np.float32], candidates: NDArray[np.int64], k: int
    ) -> list[list[tuple[int, float]]]:
        """Exact top-`k` (id, similarity) per query among its candidate rows.

        Rows that are -1 (no candidate) or tombstones are skipped.
        """
        valid = candidates >= 0
        safe = np.where(valid, candidates, 0)
        ids = np.where(valid, self._ids[safe], -1)
        similarities = np.einsum("qsd,qd->qs", self._vectors[safe], queries)
        return [
            _top(row_similarities, row_ids, k)
            for row_similarities, row_ids in zip(similarities, ids, strict=True)
        ]

    def exact(self, queries: NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
        """Exact top-`k` (id, similarity) per query over every live row."""
        ids = self._ids[: self._size]
        similarities = queries @ self._vectors[: self._size].T
        return [_top(row, ids, k) for row in similarities]


def _top(
    similarities: NDArray[np.float32], ids: NDArray[np.int64], k: int
) -> list[tuple[int, float]]:
    """The `k` most similar held ids, best first, each id once."""
    keep = ids >= 0
    similarities, ids = similarities[keep], ids[keep]
    order = np.argsort(-similarities, kind="stable")[:k]
    return [(int(ids[i]), float(similarities[i])) for i in order]


def _grown(vectors: NDArray[np.float32], capacity: int) -> NDArray[np.float32]:
    """`vectors` copied into a larger (capacity, dim) array."""
    grown = np.empty((capacity, vectors.shape[1]), dtype=np.float32)
    grown[: vectors.shape[0]] = vectors
    return grown
