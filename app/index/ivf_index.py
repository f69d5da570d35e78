"""Approximate search over inverted lists (`faiss.IndexIVFFlat`).

A coarse quantiser of nlist ≈ 4·√n centroids, trained on the faces present when
the lists are built, sends each query to its `nprobe` nearest lists. IVF
deletes for real and builds faster than HNSW, but must be trained: below
`IVF_MIN_TRAIN` faces it searches exactly, and it retrains when the gallery
has grown past `IVF_REGROWTH` times the size it was trained on.
"""

import math
from pathlib import Path
from typing import ClassVar

import faiss
import numpy as np
from numpy.typing import NDArray

from app.index.approximate import ApproximateIndex, checked_structure
from app.index.bundle import Params
from app.index.errors import IndexCorruptError

IVF_MIN_TRAIN = 2_048
IVF_REGROWTH = 4
# k-means wants about 39 points per centroid; fewer and centroids are noise.
_POINTS_PER_CENTROID = 39


def nlist_for(count: int) -> int:
    """Lists for `count` faces: 4·√n, but never fewer than 39 faces per list."""
    return max(1, min(round(4 * math.sqrt(count)), count // _POINTS_PER_CENTROID))


def nprobe_for(nlist: int) -> int:
    """Lists visited per query: an eighth of them and at least 32, all of them below that.

    An eighth keeps recall@10 above 0.99 on clustered embeddings; the floor of
    32 costs little where lists are few and short, and is where a small
    gallery of spread-out vectors needs it.
    """
    return min(nlist, max(32, math.ceil(nlist / 8)))


class IvfIndex(ApproximateIndex):
    """A `VectorIndex` shortlisting with IVF lists and re-ranking exactly."""

    kind: ClassVar[str] = "faiss-ivf"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self._trained_on = 0

    def parameters(self) -> Params:
        """nlist and nprobe of the lists (0 while searching exactly), and the training size."""
        lists = self._lists()
        return {
            "nlist": 0 if lists is None else int(lists.nlist),
            "nprobe": 0 if lists is None else int(lists.nprobe),
            "trained_on": self._trained_on,
        }

    def _lists(self) -> faiss.IndexIVFFlat | None:
        assert self._structure is None or isinstance(self._structure, faiss.IndexIVFFlat)
        return self._structure

    def _wants_rebuild(self) -> bool:
        live = self._store.live
        if self._structure is None:
            return live >= IVF_MIN_TRAIN or super()._wants_rebuild()
        return super()._wants_rebuild() or live > IVF_REGROWTH * self._trained_on

    def _build(self, vectors: NDArray[np.float32]) -> faiss.Index | None:
        count = vectors.shape[0]
        self._trained_on = count if count >= IVF_MIN_TRAIN else 0
        if not self._trained_on:
            return None
        nlist = nlist_for(count)
        lists = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT
        )
        lists.train(vectors)
        # A hash table from label to list entry makes remove_ids cheap. (faiss's
        # type stubs omit DirectMap, as they do the search parameters' fields.)
        lists.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        lists.nprobe = nprobe_for(nlist)
        lists.add_with_ids(vectors, np.arange(count, dtype=np.int64))
        return lists

    def _extend(self, rows: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        lists = self._lists()
        assert lists is not None
        lists.add_with_ids(vectors, rows)

    def _prune(self, rows: NDArray[np.int64]) -> None:
        lists = self._lists()
        assert lists is not None
        # The hash-table direct map removes only through an IDSelectorArray.
        selector = faiss.IDSelectorArray(rows.size, faiss.swig_ptr(rows))
        lists.remove_ids(selector)

    def _shortlist(self, queries: NDArray[np.float32], size: int) -> NDArray[np.int64]:
        lists = self._lists()
        assert lists is not None
        _, rows = lists.search(queries, size)  # with the index's own nprobe
        return np.asarray(rows, dtype=np.int64)

    def _adopt(self, structure: faiss.Index | None, params: Params, path: Path) -> None:
        trained_on = params.get("trained_on")
        if not isinstance(trained_on, int) or trained_on < 0:
            raise IndexCorruptError(f"{path}: training size {trained_on!r}")
        self._trained_on = trained_on
        if structure is not None or trained_on:
            self._structure = checked_structure(
                structure, faiss.IndexIVFFlat, dim=self.dim, count=self._store.live, path=path
            )
