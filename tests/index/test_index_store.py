"""IndexStore: one index per model version, and the load-or-rebuild start-up."""

import logging
from pathlib import Path

import numpy as np
import pytest

from app.index import (
    DEFAULT_INDEX_KIND,
    FaissIndex,
    IndexMissingError,
    IndexStore,
    create_index,
    ids_checksum,
)

DIM = 8


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    return IndexStore(tmp_path / "indexes")


def start_up(
    store: IndexStore, *, model_version: str, db_ids: np.ndarray, db_vectors: np.ndarray
) -> FaissIndex:
    """What the gallery layer does at start-up: load if consistent, else rebuild."""
    index = store.load_or_none(model_version, expected_ids_checksum=ids_checksum(db_ids))
    if index is None:
        index = create_index(DEFAULT_INDEX_KIND, DIM)
        index.add(db_ids, db_vectors)
        store.save(index, model_version=model_version)
    assert isinstance(index, FaissIndex)
    return index


def test_paths_are_safe_distinct_and_stable(store) -> None:
    versions = ["dlib/v1", "dlib:v1", "../../etc/passwd", "x" * 300, "ß€", "dlib-v1"]
    paths = [store.path_for(version) for version in versions]
    assert len(set(paths)) == len(paths)
    assert all(path.parent == store.directory for path in paths)
    assert all(path.suffix == ".faiss" and len(path.name) < 100 for path in paths)
    assert store.path_for("dlib/v1") == paths[0]
    assert store.path_for("dlib-v1").name.startswith("dlib-v1-")
    with pytest.raises(ValueError, match="model_version"):
        store.path_for("")


def test_first_start_builds_then_later_starts_load(store, unit_vectors, caplog) -> None:
    ids, vectors = np.arange(50, 90), unit_vectors(40, DIM)
    with caplog.at_level(logging.INFO, logger="app.index"):
        built = start_up(store, model_version="m1", db_ids=ids, db_vectors=vectors)
    assert "no stored index" in caplog.text
    assert store.path_for("m1").is_file()

    loaded = start_up(store, model_version="m1", db_ids=ids, db_vectors=vectors)
    assert loaded is not built
    assert loaded.search(vectors[:5], 3) == built.search(vectors[:5], 3)


def test_database_drift_triggers_a_rebuild(store, unit_vectors, caplog) -> None:
    ids, vectors = np.arange(40), unit_vectors(40, DIM)
    start_up(store, model_version="m1", db_ids=ids, db_vectors=vectors)
    with caplog.at_level(logging.WARNING, logger="app.index"):
        rebuilt = start_up(store, model_version="m1", db_ids=ids[:30], db_vectors=vectors[:30])
    assert "IndexMismatchError" in caplog.text
    assert len(rebuilt) == 30
    assert store.manifest("m1").ids_checksum == ids_checksum(ids[:30])


def test_corrupt_file_triggers_a_rebuild(store, unit_vectors) -> None:
    ids, vectors = np.arange(40), unit_vectors(40, DIM)
    start_up(store, model_version="m1", db_ids=ids, db_vectors=vectors)
    path = store.path_for("m1")
    path.write_bytes(path.read_bytes()[:100])
    assert store.load_or_none("m1") is None
    assert len(start_up(store, model_version="m1", db_ids=ids, db_vectors=vectors)) == 40


def test_model_versions_are_kept_apart(store, unit_vectors) -> None:
    for version, count in (("m1", 10), ("m2", 20)):
        index = FaissIndex(DIM)
        index.add(np.arange(count), unit_vectors(count, DIM))
        store.save(index, model_version=version)
    assert len(store.load("m1")) == 10
    assert len(store.load("m2")) == 20
    assert store.manifest("m2").model_version == "m2"


def test_manifest_is_read_without_the_index(store, unit_vectors) -> None:
    index = FaissIndex(DIM)
    index.add([4, 5, 6], unit_vectors(3, DIM))
    store.save(index, model_version="m1")
    store.path_for("m1").write_bytes(b"")
    assert store.manifest("m1").count == 3
    with pytest.raises(IndexMissingError):
        store.manifest("never-built")


def test_delete_removes_both_files(store, unit_vectors) -> None:
    index = FaissIndex(DIM)
    index.add([1], unit_vectors(1, DIM))
    store.save(index, model_version="m1")
    store.delete("m1")
    store.delete("m1")
    # Only the directory's lock file, which serialises savers, stays.
    assert [path.name for path in store.directory.iterdir()] == [".lock"]
    assert store.load_or_none("m1") is None


def test_an_older_snapshot_never_replaces_a_newer_one(store, unit_vectors) -> None:
    newer = FaissIndex(DIM)
    newer.add([1, 2], unit_vectors(2, DIM))
    older = FaissIndex(DIM)
    older.add([1], unit_vectors(1, DIM))

    assert store.save_if_newer(newer, model_version="m1", change_seq=7) is not None
    assert store.save_if_newer(older, model_version="m1", change_seq=5) is None
    assert store.save_if_newer(older, model_version="m1", change_seq=7) is None

    snapshot = store.load_snapshot("m1")
    assert snapshot is not None
    index, seq = snapshot
    assert (sorted(index.ids().tolist()), seq) == ([1, 2], 7)


def test_a_snapshot_is_none_when_nothing_is_stored(store) -> None:
    assert store.load_snapshot("never-built") is None
