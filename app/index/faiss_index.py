"""Exact inner-product search over gallery embeddings with FAISS.

`IndexFlatIP` compares a query with every stored vector, so results are exact
(the oracle tests hold it to numpy); `IndexIDMap2` keys vectors by face id and
keeps an id → position map so faces can be removed. A gallery of 100,000
faces searches in milliseconds on one core, which is why nothing approximate
is used yet.
"""

import logging
from pathlib import Path
from typing import ClassVar, Self

import faiss
import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.index.atomic import atomic_write
from app.index.base import SearchHit
from app.index.errors import IndexCorruptError, IndexMissingError
from app.index.rwlock import ReadWriteLock
from app.index.validation import (
    as_ids,
    as_unit_vectors,
    check_dim,
    check_k,
    checked_additions,
)

logger = logging.getLogger(__name__)


class FaissIndex:
    """A `VectorIndex` backed by `faiss.IndexIDMap2(faiss.IndexFlatIP(dim))`.

    Thread safety: any number of threads may search at once; `add`, `remove`
    and `save` wait for running searches and hold them off while they run.
    The caller still serialises its own read-modify-write sequences (say,
    "insert rows, then add to the index") so the database and the index stay
    in step.
    """

    kind: ClassVar[str] = "faiss-flat"

    def __init__(self, dim: int) -> None:
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(check_dim(dim)))
        self._members: set[int] = set()
        self._lock = ReadWriteLock()

    @property
    def dim(self) -> int:
        """Dimension of the embeddings this index holds."""
        return int(self._index.d)

    def parameters(self) -> dict[str, int | float | str]:
        """Nothing to record: an exact index has no build or search parameters."""
        return {}

    def add(self, ids: ArrayLike, vectors: ArrayLike) -> None:
        """Add `vectors` ((N, dim), unit length) under `ids` (N unique ids not yet present)."""
        checked_ids, checked_vectors = checked_additions(ids, vectors, dim=self.dim)
        if checked_ids.size == 0:
            return
        new_ids = checked_ids.tolist()
        with self._lock.write():
            present = self._members.intersection(new_ids)
            if present:
                raise ValueError(f"ids already in the index: {sorted(present)[:5]}")
            self._index.add_with_ids(checked_vectors, checked_ids)
            self._members.update(new_ids)

    def remove(self, ids: ArrayLike) -> int:
        """Remove the faces with `ids`; unknown ids are ignored. Return how many went."""
        checked_ids = np.unique(as_ids(ids))
        with self._lock.write():
            removed = 0
            if checked_ids.size:
                selector = faiss.IDSelectorBatch(checked_ids.size, faiss.swig_ptr(checked_ids))
                removed = int(self._index.remove_ids(selector))
            self._members.difference_update(checked_ids.tolist())
        return removed

    def search(self, queries: ArrayLike, k: int) -> list[list[SearchHit]]:
        """Return, for each query in `queries` (Q, dim), up to `k` hits, most similar first."""
        checked_queries = as_unit_vectors(queries, dim=self.dim, name="queries")
        checked_k = check_k(k)
        with self._lock.read():
            count = int(self._index.ntotal)
            if count == 0 or checked_queries.shape[0] == 0:
                return [[] for _ in range(checked_queries.shape[0])]
            # Asking for more than exist makes FAISS pad with id -1; ask for
            # no more than there are, and drop any -1 all the same.
            similarities, found = self._index.search(checked_queries, min(checked_k, count))
        return [
            _hits(row_similarities, row_ids)
            for row_similarities, row_ids in zip(similarities, found, strict=True)
        ]

    def ids(self) -> NDArray[np.int64]:
        """Return a copy of the ids held, in storage order."""
        with self._lock.read():
            return self._stored_ids()

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, face_id: object) -> bool:
        return face_id in self._members

    def __repr__(self) -> str:
        return f"FaissIndex(dim={self.dim}, count={len(self)})"

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically (readers see the old file or the new)."""
        with self._lock.read(), atomic_write(path) as handle:
            # Streams into our file object, so atomic_write's flush and fsync
            # cover every byte. (faiss's type stubs omit this class.)
            writer = faiss.PyCallbackIOWriter(handle.write)  # type: ignore[attr-defined]
            faiss.write_index(self._index, writer)
        logger.debug("wrote %r to %s", self, path)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read an index written by `save`.

        Raises `IndexMissingError` if there is no file, `IndexCorruptError` if it cannot
        be read or is not an id-mapped flat inner-product index.
        """
        if not path.is_file():
            raise IndexMissingError(f"no index file at {path}")
        try:
            stored = faiss.read_index(str(path))
        except RuntimeError as error:
            raise IndexCorruptError(f"cannot read index file {path}: {error}") from error
        return cls._wrap(_checked_layout(stored, path))

    @classmethod
    def _wrap(cls, stored: faiss.IndexIDMap2) -> Self:
        """Adopt an already-checked FAISS index."""
        index = cls(int(stored.d))
        index._index = stored
        index._members = set(index._stored_ids().tolist())
        return index

    def _stored_ids(self) -> NDArray[np.int64]:
        """The ids in storage order; the caller holds the lock."""
        return np.asarray(faiss.vector_to_array(self._index.id_map), dtype=np.int64)


def _hits(similarities: NDArray[np.float32], ids: NDArray[np.int64]) -> list[SearchHit]:
    """Pair one query's results, dropping FAISS's -1 placeholders."""
    return [
        SearchHit(id=int(face_id), similarity=float(similarity))
        for similarity, face_id in zip(similarities, ids, strict=True)
        if face_id >= 0
    ]


def _checked_layout(stored: faiss.Index, path: Path) -> faiss.IndexIDMap2:
    """Return `stored` if it is what `FaissIndex.save` writes, else raise `IndexCorruptError`."""
    if not isinstance(stored, faiss.IndexIDMap2):
        raise IndexCorruptError(f"{path} holds a {type(stored).__name__}, not an IndexIDMap2")
    if int(stored.d) < 1:
        raise IndexCorruptError(f"{path} declares dimension {stored.d}")
    inner = faiss.downcast_index(stored.index)
    if not isinstance(inner, faiss.IndexFlat) or stored.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexCorruptError(f"{path} does not hold a flat inner-product index")
    if int(stored.id_map.size()) != int(stored.ntotal):
        raise IndexCorruptError(
            f"{path} has {stored.id_map.size()} ids for {stored.ntotal} vectors"
        )
    return stored
