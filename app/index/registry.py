"""Index implementations by name, so settings and sidecars can refer to them.

An explicit table rather than discovery: adding a kind is one line here, and
a sidecar naming an unknown kind is refused rather than guessed at.

Sidecars name the implementation (`faiss-flat`, `faiss-hnsw`, `faiss-ivf`);
settings name the choice (`flat`, `hnsw`, `ivf`, or `auto`). `auto` keeps the
exact flat index up to `AUTO_FLAT_LIMIT` faces, where an exact search still
takes a few milliseconds per probe, and takes HNSW above it: no training, it
grows one enrollment at a time, and it answers in well under a millisecond at
recall above 0.99. IVF is the choice when building must be fast or memory is
tight; it is never picked automatically.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from app.index.base import VectorIndex
from app.index.faiss_index import FaissIndex
from app.index.hnsw_index import HnswIndex
from app.index.ivf_index import IvfIndex

DEFAULT_INDEX_KIND: Final = "faiss-flat"

INDEX_KINDS: Final[Mapping[str, type[VectorIndex]]] = MappingProxyType(
    {
        "faiss-flat": FaissIndex,
        "faiss-hnsw": HnswIndex,
        "faiss-ivf": IvfIndex,
    }
)

INDEX_CHOICES: Final[Mapping[str, str]] = MappingProxyType(
    {"flat": "faiss-flat", "hnsw": "faiss-hnsw", "ivf": "faiss-ivf"}
)
"""The names `LINEUP_INDEX_KIND` takes (besides `auto`), and the kind each means."""

AUTO_INDEX_KIND: Final = "auto"
AUTO_FLAT_LIMIT: Final = 200_000
AUTO_LARGE_KIND: Final = "faiss-hnsw"


def resolve_kind(kind: str, expected_size: int = 0) -> str:
    """The registered kind meant by `kind` (a setting or a registered name).

    `auto` picks by `expected_size`, the faces the index will hold when built.
    """
    if kind == AUTO_INDEX_KIND:
        return DEFAULT_INDEX_KIND if expected_size <= AUTO_FLAT_LIMIT else AUTO_LARGE_KIND
    resolved = INDEX_CHOICES.get(kind, kind)
    if resolved not in INDEX_KINDS:
        known = ", ".join([AUTO_INDEX_KIND, *INDEX_CHOICES, *sorted(INDEX_KINDS)])
        raise ValueError(f"unknown index kind {kind!r}; known kinds: {known}")
    return resolved


def create_index(kind: str, dim: int, expected_size: int = 0) -> VectorIndex:
    """Return an empty index of `kind` for `dim`-dimensional embeddings.

    `expected_size` only matters to `auto`; pass the number of faces about to
    be added (a rebuild passes the gallery's size).
    """
    return INDEX_KINDS[resolve_kind(kind, expected_size)](dim)
