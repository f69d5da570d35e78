"""What every approximate index shares: a shortlist re-ranked exactly, tombstones, rebuilds.

The FAISS structure (an HNSW graph, IVF lists) is keyed by row of an
`ExactStore` and only proposes a shortlist; the store recomputes each
candidate's similarity, so every similarity returned is exact and only recall
is approximate. Removed faces are tombstoned in the store and skipped; once
they pass `TOMBSTONE_LIMIT` of the rows, the structure is rebuilt from the
faces left. Subclasses say how to build, extend and prune their structure.
"""

import logging
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Self, TypeVar

import faiss
import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.index.base import SearchHit
from app.index.bundle import Bundle, Params, read_bundle, write_bundle
from app.index.errors import IndexCorruptError
from app.index.exact_store import ExactStore
from app.index.rwlock import ReadWriteLock
from app.index.validation import (
    as_ids,
    as_unit_vectors,
    check_dim,
    check_k,
    checked_additions,
)

logger = logging.getLogger(__name__)

# Candidates fetched per wanted hit, and the least shortlist: re-ranking 64
# vectors costs microseconds and makes a near miss of the structure harmless.
SHORTLIST_FACTOR = 4
MIN_SHORTLIST = 64
# Past this share of tombstoned rows, searches waste too much of their
# shortlist (and memory) on removed faces: rebuild.
TOMBSTONE_LIMIT = 0.2

Structure = TypeVar("Structure", bound=faiss.Index)


class ApproximateIndex(ABC):
    """A `VectorIndex` whose FAISS structure shortlists and whose store decides.

    Thread safety as `FaissIndex`: searches run side by side; `add`, `remove`
    and `save` run alone.
    """

    kind: ClassVar[str]

    def __init__(self, dim: int) -> None:
        self._store = ExactStore(check_dim(dim))
        self._structure: faiss.Index | None = None
        self._lock = ReadWriteLock()

    @property
    def dim(self) -> int:
        """Dimension of the embeddings this index holds."""
        return self._store.dim

    @abstractmethod
    def parameters(self) -> Params:
        """How the structure is built and searched, as recorded in the sidecar."""

    @abstractmethod
    def _build(self, vectors: NDArray[np.float32]) -> faiss.Index | None:
        """A structure over `vectors`, labelled by row from 0; None to search exactly."""

    @abstractmethod
    def _extend(self, rows: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add `vectors`, stored in `rows`, to the existing structure."""

    @abstractmethod
    def _prune(self, rows: NDArray[np.int64]) -> None:
        """Take the tombstoned `rows` out of the structure, where it can."""

    @abstractmethod
    def _shortlist(self, queries: NDArray[np.float32], size: int) -> NDArray[np.int64]:
        """Up to `size` candidate rows per query from the structure (-1 pads)."""

    @abstractmethod
    def _adopt(self, structure: faiss.Index | None, params: Params, path: Path) -> None:
        """Take a loaded structure and parameters, or raise `IndexCorruptError`."""

    def _wants_rebuild(self) -> bool:
        """Whether the structure no longer suits the store (subclasses add reasons)."""
        rows = self._store.rows
        return rows > 0 and self._store.dead > TOMBSTONE_LIMIT * rows

    def add(self, ids: ArrayLike, vectors: ArrayLike) -> None:
        """Add `vectors` ((N, dim), unit length) under `ids` (N unique ids not yet present)."""
        checked_ids, checked_vectors = checked_additions(ids, vectors, dim=self.dim)
        if checked_ids.size == 0:
            return
        with self._lock.write():
            present = self._store.present(checked_ids.tolist())
            if present:
                raise ValueError(f"ids already in the index: {sorted(present)[:5]}")
            rows = self._store.append(checked_ids, checked_vectors)
            if self._structure is not None:
                self._extend(rows, checked_vectors)
            self._rebuild_if_due()

    def remove(self, ids: ArrayLike) -> int:
        """Remove the faces with `ids`; unknown ids are ignored. Return how many went."""
        checked_ids = np.unique(as_ids(ids))
        with self._lock.write():
            rows = self._store.kill(checked_ids)
            if rows.size and self._structure is not None:
                self._prune(rows)
            self._rebuild_if_due()
        return int(rows.size)

    def search(self, queries: ArrayLike, k: int) -> list[list[SearchHit]]:
        """Return, for each query in `queries` (Q, dim), up to `k` hits, most similar first.

        Every similarity is exact; a query whose shortlist held too few live faces
        is answered by an exact scan, so it never gets fewer than min(k, count).
        """
        checked_queries = as_unit_vectors(queries, dim=self.dim, name="queries")
        checked_k = check_k(k)
        with self._lock.read():
            found = self._search(checked_queries, checked_k)
        return [[SearchHit(id=i, similarity=s) for i, s in row] for row in found]

    def _search(self, queries: NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
        """Search with the lock held."""
        live = self._store.live
        size = self._shortlist_size(k)
        if live == 0 or queries.shape[0] == 0:
            return [[] for _ in range(queries.shape[0])]
        if self._structure is None or live <= size:
            return self._store.exact(queries, k)
        found = self._store.rerank(queries, self._shortlist(queries, size), k)
        wanted = min(k, live)
        short = [row for row, hits in enumerate(found) if len(hits) < wanted]
        if short:
            for row, hits in zip(short, self._store.exact(queries[short], k), strict=True):
                found[row] = hits
        return found

    def _shortlist_size(self, k: int) -> int:
        """Candidates to fetch for `k` hits, widened by the share of tombstones."""
        base = max(SHORTLIST_FACTOR * k, MIN_SHORTLIST)
        rows = max(self._store.rows, 1)
        return math.ceil(base * rows / max(rows - self._store.dead, 1))

    def _rebuild_if_due(self) -> None:
        """Compact the store and rebuild the structure when `_wants_rebuild` says so."""
        if not self._wants_rebuild():
            return
        before = self._store.rows
        self._store = self._store.compacted()
        self._structure = self._build(self._store.live_vectors())
        logger.info("rebuilt %s index: %d rows → %d faces", self.kind, before, self._store.live)

    def ids(self) -> NDArray[np.int64]:
        """Return a copy of the ids held, in storage order."""
        with self._lock.read():
            return self._store.live_ids()

    def __len__(self) -> int:
        return self._store.live

    def __contains__(self, face_id: object) -> bool:
        return face_id in self._store

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, count={len(self)}, {self.parameters()})"

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically (readers see the old file or the new)."""
        with self._lock.read():
            ids, vectors = self._store.all_rows()
            bundle = Bundle(
                kind=self.kind,
                params=self.parameters(),
                ids=ids,
                vectors=vectors,
                structure=self._structure,
            )
            write_bundle(path, bundle)
        logger.debug("wrote %r to %s", self, path)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read an index written by `save`.

        Raises `IndexMissingError` if there is no file, `IndexCorruptError` if it
        cannot be read, is of another kind, or its parts disagree.
        """
        bundle = read_bundle(path, kind=cls.kind)
        index = cls(int(bundle.vectors.shape[1]))
        index._store = ExactStore.from_rows(bundle.ids, bundle.vectors)
        index._adopt(bundle.structure, bundle.params, path)
        if index.parameters() != bundle.params:
            raise IndexCorruptError(f"{path}: parameters {bundle.params} do not fit its structure")
        return index


def checked_structure(
    structure: faiss.Index | None,
    expected: type[Structure],
    *,
    dim: int,
    count: int,
    path: Path,
) -> Structure:
    """Return `structure` downcast if it is an `expected` of `dim` holding `count` vectors."""
    if structure is None:
        raise IndexCorruptError(f"{path} has no {expected.__name__}")
    # faiss's readers return the concrete class already and own it; a downcast
    # would make a second, non-owning wrapper that outlives the object.
    concrete = structure
    if not isinstance(concrete, expected) or concrete.metric_type != faiss.METRIC_INNER_PRODUCT:
        found = type(concrete).__name__
        raise IndexCorruptError(f"{path} holds a {found}, not {expected.__name__}")
    if int(concrete.d) != dim or int(concrete.ntotal) != count:
        raise IndexCorruptError(
            f"{path}: structure of {concrete.ntotal} × {concrete.d}, store of {count} × {dim}"
        )
    return concrete
