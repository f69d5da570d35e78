"""The contract every vector index fulfils, and what a search returns."""

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One gallery face found by a search.

    `similarity` is the inner product of the query with the face's embedding;
    both are unit length, so it is their cosine, in [-1, 1] up to rounding.
    """

    id: int
    similarity: float


@runtime_checkable
class VectorIndex(Protocol):
    """A set of unit-length embeddings keyed by face id, searchable by similarity.

    The database is the source of truth; an index is a rebuildable accelerator
    holding the embeddings of one model version. It records nothing about who
    made its vectors: the sidecar written by `app.index.persistence` does.

    Ids are non-negative int64 face ids, unique within an index. Bad input is
    refused with `ValueError` before anything changes, so a rejected call
    leaves the index as it was.
    """

    kind: ClassVar[str]

    def __init__(self, dim: int) -> None:
        """Create an empty index for `dim`-dimensional embeddings."""
        ...

    @property
    def dim(self) -> int:
        """Dimension of the embeddings this index holds."""
        ...

    def parameters(self) -> dict[str, int | float | str]:
        """How the index is built and searched (empty for an exact one), for the sidecar."""
        ...

    def add(self, ids: ArrayLike, vectors: ArrayLike) -> None:
        """Add `vectors` ((N, dim), unit length) under `ids` (N unique ids not yet present)."""
        ...

    def remove(self, ids: ArrayLike) -> int:
        """Remove the faces with `ids`; unknown ids are ignored. Return how many went."""
        ...

    def search(self, queries: ArrayLike, k: int) -> list[list[SearchHit]]:
        """Return, for each query in `queries` (Q, dim), up to `k` hits, most similar first.

        A query gets fewer than `k` hits only when the index holds fewer than
        `k` faces; it never gets placeholder ids.
        """
        ...

    def ids(self) -> NDArray[np.int64]:
        """Return a copy of the ids held, in storage order."""
        ...

    def __len__(self) -> int:
        """Number of faces held."""
        ...

    def __contains__(self, face_id: object) -> bool:
        """Whether a face with this id is held."""
        ...

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically (readers see the old file or the new)."""
        ...

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read an index written by `save`; raise `IndexLoadError` subclasses on failure."""
        ...
