"""The vector index: unit-length embeddings keyed by face id, searched by similarity.

A rebuildable accelerator over the database, one per model version, saved
atomically with a sidecar that lets start-up decide to load or rebuild.
"""

from app.index.base import SearchHit, VectorIndex
from app.index.errors import (
    IndexCorruptError,
    IndexLoadError,
    IndexMismatchError,
    IndexMissingError,
)
from app.index.faiss_index import FaissIndex
from app.index.hnsw_index import HnswIndex
from app.index.ivf_index import IvfIndex
from app.index.manifest import FORMAT_VERSION, IndexManifest, ids_checksum, read_manifest
from app.index.persistence import load_index, save_index
from app.index.registry import (
    AUTO_FLAT_LIMIT,
    DEFAULT_INDEX_KIND,
    INDEX_CHOICES,
    INDEX_KINDS,
    create_index,
    resolve_kind,
)
from app.index.store import IndexStore

__all__ = [
    "AUTO_FLAT_LIMIT",
    "DEFAULT_INDEX_KIND",
    "FORMAT_VERSION",
    "INDEX_CHOICES",
    "INDEX_KINDS",
    "FaissIndex",
    "HnswIndex",
    "IndexCorruptError",
    "IndexLoadError",
    "IndexManifest",
    "IndexMismatchError",
    "IndexMissingError",
    "IndexStore",
    "IvfIndex",
    "SearchHit",
    "VectorIndex",
    "create_index",
    "ids_checksum",
    "load_index",
    "read_manifest",
    "resolve_kind",
    "save_index",
]
