"""Index implementations by name, so settings and sidecars can refer to them.

An explicit table rather than discovery: adding a kind is one line here, and
a sidecar naming an unknown kind is refused rather than guessed at.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from app.index.base import VectorIndex
from app.index.faiss_index import FaissIndex

DEFAULT_INDEX_KIND: Final = "faiss-flat"

INDEX_KINDS: Final[Mapping[str, type[VectorIndex]]] = MappingProxyType(
    {
        "faiss-flat": FaissIndex,
    }
)


def create_index(kind: str, dim: int) -> VectorIndex:
    """Return an empty index of `kind` for `dim`-dimensional embeddings."""
    try:
        index_class = INDEX_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(INDEX_KINDS))
        raise ValueError(f"unknown index kind {kind!r}; known kinds: {known}") from None
    return index_class(dim)
