"""Save an index with its sidecar, and load it back only if everything agrees.

The index file is written first and the sidecar second, each atomically. A
crash between the two leaves a new index beside an old sidecar; loading then
finds their counts or checksums disagree and reports `IndexCorruptError`, and the
caller rebuilds from the database, which is the source of truth.
"""

import logging
from pathlib import Path

import faiss

from app.index.base import VectorIndex
from app.index.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from app.index.manifest import (
    FORMAT_VERSION,
    IndexManifest,
    ids_checksum,
    read_manifest,
    utc_now_iso,
    write_manifest,
)
from app.index.registry import INDEX_KINDS

logger = logging.getLogger(__name__)


def describe(index: VectorIndex, *, model_version: str, change_seq: int = 0) -> IndexManifest:
    """Return the sidecar describing `index` as it is now."""
    return IndexManifest(
        format_version=FORMAT_VERSION,
        kind=index.kind,
        model_version=model_version,
        dim=index.dim,
        count=len(index),
        ids_checksum=ids_checksum(index.ids()),
        built_at=utc_now_iso(),
        faiss_version=str(faiss.__version__),
        change_seq=change_seq,
        params=dict(index.parameters()),
    )


def save_index(
    index: VectorIndex, path: Path, *, model_version: str, change_seq: int = 0
) -> IndexManifest:
    """Write `index` to `path` and its sidecar beside it; return the sidecar.

    Mutations must not run concurrently with this, or the sidecar may
    describe a different state than the file; callers hold their index lock.
    """
    if not model_version:
        raise ValueError("model_version must be a non-empty string")
    manifest = describe(index, model_version=model_version, change_seq=change_seq)
    index.save(path)
    write_manifest(manifest, path)
    logger.info(
        "saved %s index of %d faces for model %s to %s",
        manifest.kind,
        manifest.count,
        model_version,
        path,
    )
    return manifest


def load_index(
    path: Path, *, model_version: str, expected_ids_checksum: str | None = None
) -> VectorIndex:
    """Load the index at `path`, checking it against its sidecar and the caller.

    `expected_ids_checksum` (from `ids_checksum` over the database's face ids
    for this model version) is compared before any vectors are read.

    Raises `IndexMissingError` (no files), `IndexCorruptError` (unreadable, truncated,
    or disagreeing with its sidecar) or `IndexMismatchError` (another model
    version, format, kind, or set of faces).
    """
    manifest = read_manifest(path)
    check_expectations(
        manifest, model_version=model_version, expected_ids_checksum=expected_ids_checksum
    )
    try:
        index = INDEX_KINDS[manifest.kind].load(path)
    except IndexMissingError as error:
        raise IndexCorruptError(f"sidecar present but index file missing at {path}") from error
    check_agreement(index, manifest, path)
    return index


def check_expectations(
    manifest: IndexManifest, *, model_version: str, expected_ids_checksum: str | None
) -> None:
    """Raise `IndexMismatchError` if the sidecar is not what the caller needs."""
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {manifest.format_version}, this code reads {FORMAT_VERSION}"
        )
    if manifest.kind not in INDEX_KINDS:
        raise IndexMismatchError(f"unknown index kind {manifest.kind!r}")
    if manifest.model_version != model_version:
        raise IndexMismatchError(
            f"index built for model {manifest.model_version!r}, expected {model_version!r}"
        )
    if expected_ids_checksum is not None and manifest.ids_checksum != expected_ids_checksum:
        raise IndexMismatchError("index holds a different set of faces than expected")


def check_agreement(index: VectorIndex, manifest: IndexManifest, path: Path) -> None:
    """Raise `IndexCorruptError` unless the loaded index is what its sidecar describes."""
    if index.dim != manifest.dim:
        raise IndexCorruptError(f"{path}: dimension {index.dim}, sidecar says {manifest.dim}")
    if len(index) != manifest.count:
        raise IndexCorruptError(f"{path}: {len(index)} faces, sidecar says {manifest.count}")
    if ids_checksum(index.ids()) != manifest.ids_checksum:
        raise IndexCorruptError(f"{path}: ids differ from those the sidecar records")
    if dict(index.parameters()) != manifest.params:
        raise IndexCorruptError(
            f"{path}: parameters {index.parameters()}, sidecar says {manifest.params}"
        )
