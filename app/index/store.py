"""A directory holding one index per model version.

This is the start-up seam for the gallery layer::

    store = IndexStore(settings.index_dir)
    expected = ids_checksum(face_ids_in_db)
    index = store.load_or_none(model_version, expected_ids_checksum=expected)
    if index is None:
        index = create_index(DEFAULT_INDEX_KIND, dim)
        index.add(face_ids_in_db, embeddings_in_db)
        store.save(index, model_version=model_version)
"""

import fcntl
import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.index.base import VectorIndex
from app.index.errors import IndexLoadError, IndexMissingError
from app.index.manifest import IndexManifest, read_manifest, sidecar_path
from app.index.persistence import load_index, save_index
from app.index.registry import DEFAULT_INDEX_KIND, create_index

logger = logging.getLogger(__name__)

INDEX_SUFFIX = ".faiss"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class IndexStore:
    """Index files under `directory`, named after the model version they serve.

    `kind` (a setting: `flat`, `hnsw`, `ivf` or `auto`) is what `new_index` builds;
    a stored index is loaded as the kind its sidecar names, whatever the setting.
    """

    def __init__(self, directory: Path, *, kind: str = DEFAULT_INDEX_KIND) -> None:
        self.directory = directory
        self.kind = kind

    def new_index(self, dim: int, *, expected_size: int) -> VectorIndex:
        """An empty index of this store's kind, for a gallery of about `expected_size`."""
        return create_index(self.kind, dim, expected_size=expected_size)

    def path_for(self, model_version: str) -> Path:
        """Return the index file path for `model_version`.

        Model versions are opaque and may hold any character, so the name is a
        readable slug plus a hash of the exact string: two versions never
        share a file, and nothing escapes the directory.
        """
        if not model_version:
            raise ValueError("model_version must be a non-empty string")
        slug = _UNSAFE.sub("_", model_version).strip("._")[:64] or "model"
        digest = hashlib.sha256(model_version.encode("utf-8")).hexdigest()[:12]
        return self.directory / f"{slug}-{digest}{INDEX_SUFFIX}"

    def manifest(self, model_version: str) -> IndexManifest:
        """Read the sidecar for `model_version` without loading any vectors.

        Raises `IndexMissingError` or `IndexCorruptError` as `read_manifest` does.
        """
        return read_manifest(self.path_for(model_version))

    def save(self, index: VectorIndex, *, model_version: str) -> IndexManifest:
        """Save `index` as the index for `model_version`; return its sidecar."""
        return save_index(index, self.path_for(model_version), model_version=model_version)

    def save_if_newer(
        self, index: VectorIndex, *, model_version: str, change_seq: int
    ) -> IndexManifest | None:
        """Save `index` as of change `change_seq` unless the stored one is as new or newer.

        Several processes share the directory and each saves its own copy; a
        process that fell behind must not replace a newer snapshot with its
        older one. The check and the write happen under one file lock.
        Return the new sidecar, or None when nothing was written.
        """
        with self._exclusive():
            try:
                stored = self.manifest(model_version).change_seq
            except IndexLoadError:
                stored = -1
            if stored >= change_seq:
                return None
            return save_index(
                index,
                self.path_for(model_version),
                model_version=model_version,
                change_seq=change_seq,
            )

    def load_snapshot(self, model_version: str) -> tuple[VectorIndex, int] | None:
        """The stored index of `model_version` and the change it contains, or None."""
        with self._exclusive():
            index = self.load_or_none(model_version)
            if index is None:
                return None
            try:
                return index, self.manifest(model_version).change_seq
            except IndexLoadError:
                return None

    def remove_temporary(self) -> int:
        """Remove what interrupted saves left (`.<name>.<random>.tmp`); return how many."""
        with self._exclusive():
            leftovers = list(self.directory.glob(".*.tmp"))
            for path in leftovers:
                path.unlink(missing_ok=True)
        return len(leftovers)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the directory's lock file, so no reader sees a half-replaced pair of files."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self, model_version: str, *, expected_ids_checksum: str | None = None) -> VectorIndex:
        """Load the index for `model_version`, raising `IndexLoadError` subclasses."""
        return load_index(
            self.path_for(model_version),
            model_version=model_version,
            expected_ids_checksum=expected_ids_checksum,
        )

    def load_or_none(
        self, model_version: str, *, expected_ids_checksum: str | None = None
    ) -> VectorIndex | None:
        """Load the index for `model_version`, or return None if it must be rebuilt.

        The reason is logged: missing at info level (first start), anything
        else as a warning.
        """
        try:
            return self.load(model_version, expected_ids_checksum=expected_ids_checksum)
        except IndexMissingError as error:
            logger.info("no stored index for model %s: %s", model_version, error)
        except IndexLoadError as error:
            logger.warning(
                "stored index for model %s unusable (%s): %s",
                model_version,
                type(error).__name__,
                error,
            )
        return None

    def delete(self, model_version: str) -> None:
        """Remove the index and sidecar for `model_version`, if present."""
        path = self.path_for(model_version)
        with self._exclusive():
            sidecar_path(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
