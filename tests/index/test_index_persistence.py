"""Atomic save with a sidecar, and a load that refuses anything inconsistent."""

import hashlib
import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from app.index import (
    FORMAT_VERSION,
    FaissIndex,
    IndexCorruptError,
    IndexLoadError,
    IndexMismatchError,
    IndexMissingError,
    ids_checksum,
    load_index,
    read_manifest,
    save_index,
)
from app.index.atomic import atomic_write

DIM = 32
MODEL = "dlib-resnet-v1@sha256:0123abcd"


@pytest.fixture
def gallery(unit_vectors, rng) -> tuple[np.ndarray, np.ndarray]:
    # Over 1 MB of vectors, so the index streams out in several chunks.
    ids = rng.permutation(100_000)[:9_000].astype(np.int64)
    return ids, unit_vectors(ids.size, DIM)


@pytest.fixture
def saved(tmp_path: Path, gallery) -> Path:
    ids, vectors = gallery
    index = FaissIndex(DIM)
    index.add(ids, vectors)
    path = tmp_path / "gallery.faiss"
    save_index(index, path, model_version=MODEL)
    return path


def rewrite_sidecar(path: Path, **changes: object) -> None:
    sidecar = path.with_suffix(".json")
    fields = json.loads(sidecar.read_text())
    fields.update(changes)
    sidecar.write_text(json.dumps(fields))


def test_round_trip_gives_identical_results(tmp_path, gallery, unit_vectors) -> None:
    ids, vectors = gallery
    original = FaissIndex(DIM)
    original.add(ids, vectors)
    original.remove(ids[:100])
    path = tmp_path / "gallery.faiss"
    save_index(original, path, model_version=MODEL)

    loaded = load_index(path, model_version=MODEL)

    queries = unit_vectors(20, DIM)
    assert loaded.search(queries, 15) == original.search(queries, 15)
    np.testing.assert_array_equal(loaded.ids(), original.ids())
    assert ids[0] not in loaded and ids[100] in loaded
    assert loaded.dim == DIM and isinstance(loaded, FaissIndex)


def test_sidecar_describes_the_index(saved, gallery) -> None:
    ids, _ = gallery
    manifest = read_manifest(saved)
    assert manifest.model_version == MODEL
    assert manifest.kind == "faiss-flat"
    assert manifest.dim == DIM
    assert manifest.count == ids.size
    assert manifest.ids_checksum == ids_checksum(ids)
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.faiss_version == faiss.__version__
    assert manifest.built_at.endswith("+00:00")


def test_only_the_index_and_sidecar_remain(saved) -> None:
    assert sorted(p.name for p in saved.parent.iterdir()) == ["gallery.faiss", "gallery.json"]


def test_saving_again_replaces_both_files(saved, unit_vectors) -> None:
    index = FaissIndex(DIM)
    index.add([1, 2], unit_vectors(2, DIM))
    save_index(index, saved, model_version=MODEL)
    assert len(load_index(saved, model_version=MODEL)) == 2
    assert sorted(p.name for p in saved.parent.iterdir()) == ["gallery.faiss", "gallery.json"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_write(target) as handle:
        handle.write(b"partial new content")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_missing_files_raise_missing(tmp_path) -> None:
    with pytest.raises(IndexMissingError):
        load_index(tmp_path / "nothing.faiss", model_version=MODEL)


def test_truncated_index_is_corrupt(saved) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError):
        load_index(saved, model_version=MODEL)


def test_garbage_index_is_corrupt(saved) -> None:
    saved.write_bytes(b"not a faiss index at all")
    with pytest.raises(IndexCorruptError):
        load_index(saved, model_version=MODEL)


def test_index_of_another_layout_is_corrupt(saved) -> None:
    faiss.write_index(faiss.IndexFlatL2(DIM), str(saved))
    with pytest.raises(IndexCorruptError, match="IndexIDMap2"):
        load_index(saved, model_version=MODEL)


def test_missing_sidecar_is_corrupt(saved) -> None:
    saved.with_suffix(".json").unlink()
    with pytest.raises(IndexCorruptError, match="no sidecar"):
        load_index(saved, model_version=MODEL)


def test_missing_index_beside_a_sidecar_is_corrupt(saved) -> None:
    saved.unlink()
    with pytest.raises(IndexCorruptError, match="index file missing"):
        load_index(saved, model_version=MODEL)


@pytest.mark.parametrize(
    "changes",
    [
        {"ids_checksum": "0" * 64},
        {"count": 8_999},
        {"dim": 128},
    ],
)
def test_sidecar_disagreeing_with_index_is_corrupt(saved, changes) -> None:
    rewrite_sidecar(saved, **changes)
    with pytest.raises(IndexCorruptError):
        load_index(saved, model_version=MODEL)


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '{"kind": "faiss-flat"}', "\xff\xfe".encode("latin-1")]
)
def test_unreadable_sidecar_is_corrupt(saved, text) -> None:
    sidecar = saved.with_suffix(".json")
    if isinstance(text, bytes):
        sidecar.write_bytes(text)
    else:
        sidecar.write_text(text)
    with pytest.raises(IndexCorruptError):
        load_index(saved, model_version=MODEL)


def test_sidecar_with_wrongly_typed_field_is_corrupt(saved) -> None:
    rewrite_sidecar(saved, count="9000")
    with pytest.raises(IndexCorruptError, match="count"):
        load_index(saved, model_version=MODEL)


def test_other_model_version_is_a_mismatch(saved) -> None:
    with pytest.raises(IndexMismatchError, match="expected 'facenet"):
        load_index(saved, model_version="facenet-vggface2@sha256:ffff")


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"format_version": FORMAT_VERSION + 1}, "format"), ({"kind": "hnsw"}, "kind")],
)
def test_other_format_or_kind_is_a_mismatch(saved, changes, message) -> None:
    rewrite_sidecar(saved, **changes)
    with pytest.raises(IndexMismatchError, match=message):
        load_index(saved, model_version=MODEL)


def test_expected_checksum_is_checked(saved, gallery) -> None:
    ids, _ = gallery
    assert len(load_index(saved, model_version=MODEL, expected_ids_checksum=ids_checksum(ids)))
    with pytest.raises(IndexMismatchError, match="different set of faces"):
        load_index(saved, model_version=MODEL, expected_ids_checksum=ids_checksum(ids[1:]))


def test_every_load_failure_is_an_index_load_error() -> None:
    for error in (IndexMissingError, IndexCorruptError, IndexMismatchError):
        assert issubclass(error, IndexLoadError)
        assert not issubclass(error, IndexError)


def test_save_needs_a_model_version(tmp_path) -> None:
    with pytest.raises(ValueError, match="model_version"):
        save_index(FaissIndex(DIM), tmp_path / "x.faiss", model_version="")


def test_empty_index_round_trips(tmp_path) -> None:
    path = tmp_path / "empty.faiss"
    save_index(FaissIndex(DIM), path, model_version=MODEL)
    loaded = load_index(path, model_version=MODEL, expected_ids_checksum=ids_checksum([]))
    assert len(loaded) == 0 and loaded.dim == DIM


def test_ids_checksum_ignores_order_and_container() -> None:
    digest = ids_checksum(np.array([3, 1, 2], dtype=np.int64))
    assert ids_checksum([1, 2, 3]) == digest
    assert ids_checksum(np.array([2, 3, 1], dtype=np.uint16)) == digest
    assert ids_checksum([1, 2, 4]) != digest
    # The documented recipe, so other tools can reproduce it.
    expected = hashlib.sha256(np.array([1, 2, 3], dtype="<i8").tobytes()).hexdigest()
    assert digest == expected
