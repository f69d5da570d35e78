"""The `VectorIndex` contract, held to every registered kind alike."""

import json
from pathlib import Path

# The service imports pytorch-metric-learning, which patches faiss' `search` through this
# module for torch tensors; every kind must work under the patch.
import faiss.contrib.torch_utils  # noqa: F401
import numpy as np
import pytest

from app.index import (
    INDEX_KINDS,
    FaissIndex,
    IndexCorruptError,
    IndexLoadError,
    VectorIndex,
    create_index,
    ids_checksum,
    load_index,
    read_manifest,
    save_index,
)

DIM = 16
MODEL = "dlib-resnet-v1@sha256:0123abcd"
# Past IVF's training size and far past the shortlist, so every kind searches
# through its approximate structure rather than by an exact scan.
GALLERY = 3_000


@pytest.fixture(params=sorted(INDEX_KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gallery(unit_vectors, rng) -> tuple[np.ndarray, np.ndarray]:
    ids = rng.permutation(1_000_000)[:GALLERY].astype(np.int64)
    return ids, unit_vectors(GALLERY, DIM)


@pytest.fixture
def filled(kind, gallery) -> VectorIndex:
    ids, vectors = gallery
    index = create_index(kind, DIM)
    index.add(ids, vectors)
    return index


def test_add_counts_and_lists_ids(kind, unit_vectors) -> None:
    index = create_index(kind, DIM)
    assert index.kind == kind and index.dim == DIM and len(index) == 0
    index.add(np.array([5, 3, 9]), unit_vectors(3, DIM))
    assert len(index) == 3
    assert sorted(index.ids().tolist()) == [3, 5, 9]
    assert 5 in index and 4 not in index


def test_adding_a_present_id_changes_nothing(filled, gallery, unit_vectors) -> None:
    ids, _ = gallery
    with pytest.raises(ValueError, match="already"):
        filled.add(np.array([10_000_001, ids[0]]), unit_vectors(2, DIM))
    assert len(filled) == GALLERY and 10_000_001 not in filled


def test_remove_then_add_again(filled, gallery) -> None:
    ids, vectors = gallery
    assert filled.remove(np.concatenate([ids[:10], [10_000_001]])) == 10
    assert len(filled) == GALLERY - 10 and ids[0] not in filled
    hits = filled.search(vectors[:10], 5)
    assert not {hit.id for row in hits for hit in row} & set(ids[:10].tolist())
    filled.add(ids[:1], vectors[:1])
    assert filled.search(vectors[:1], 1)[0][0].id == ids[0]
    assert len(filled) == GALLERY - 9


def test_search_agrees_with_the_oracle(filled, gallery, unit_vectors, numpy_top_k) -> None:
    # Uniform random vectors are the hardest case for an approximate index; the
    # recall test below holds it to clustered ones, like real embeddings.
    ids, vectors = gallery
    queries = unit_vectors(20, DIM)
    expected = numpy_top_k(vectors, ids, queries, 10)
    shared_total = 0
    for hits, oracle in zip(filled.search(queries, 10), expected, strict=True):
        assert len(hits) == 10
        truth = dict(oracle)
        found = {hit.id: hit.similarity for hit in hits}
        shared = found.keys() & truth.keys()
        shared_total += len(shared)
        assert all(abs(found[i] - truth[i]) < 1e-5 for i in shared)
    assert shared_total >= 0.9 * 10 * len(queries)


def test_similarities_match_the_flat_index(filled, gallery, unit_vectors) -> None:
    ids, vectors = gallery
    flat = FaissIndex(DIM)
    flat.add(ids, vectors)
    queries = unit_vectors(10, DIM)
    by_id = {int(i): v for i, v in zip(ids, vectors, strict=True)}
    for query, hits in zip(queries, filled.search(queries, 5), strict=True):
        similarities = [hit.similarity for hit in hits]
        assert similarities == sorted(similarities, reverse=True)
        for hit in hits:
            assert hit.similarity == pytest.approx(float(by_id[hit.id] @ query), abs=1e-6)


def test_top_hit_of_a_stored_vector_is_itself(filled, gallery) -> None:
    ids, vectors = gallery
    hits = filled.search(vectors[:50], 1)
    assert [row[0].id for row in hits] == ids[:50].tolist()
    assert all(row[0].similarity == pytest.approx(1.0, abs=1e-5) for row in hits)


def test_fewer_hits_only_when_fewer_faces(kind, unit_vectors) -> None:
    index = create_index(kind, DIM)
    assert index.search(unit_vectors(2, DIM), 3) == [[], []]
    index.add(np.arange(4), unit_vectors(4, DIM))
    assert [len(row) for row in index.search(unit_vectors(2, DIM), 10)] == [4, 4]


def test_dimension_mismatch_is_refused(filled, unit_vectors) -> None:
    with pytest.raises(ValueError, match="shape"):
        filled.add(np.array([10_000_001]), unit_vectors(1, DIM + 1))
    with pytest.raises(ValueError, match="shape"):
        filled.search(unit_vectors(1, DIM - 1), 3)
    assert len(filled) == GALLERY


def test_save_and_load_round_trip(filled, gallery, unit_vectors, tmp_path) -> None:
    ids, _ = gallery
    filled.remove(ids[:100])
    path = tmp_path / "gallery.faiss"
    manifest = save_index(filled, path, model_version=MODEL)
    assert manifest.kind == filled.kind and manifest.params == filled.parameters()
    loaded = load_index(path, model_version=MODEL, expected_ids_checksum=ids_checksum(ids[100:]))
    assert type(loaded) is type(filled) and loaded.parameters() == filled.parameters()
    assert sorted(loaded.ids().tolist()) == sorted(filled.ids().tolist())
    queries = unit_vectors(10, DIM)
    assert loaded.search(queries, 5) == filled.search(queries, 5)


def test_flat_sidecar_keeps_its_old_fields(tmp_path, unit_vectors) -> None:
    index = FaissIndex(DIM)
    index.add(np.arange(3), unit_vectors(3, DIM))
    path = tmp_path / "gallery.faiss"
    save_index(index, path, model_version=MODEL)
    assert "params" not in json.loads(path.with_suffix(".json").read_text())
    assert read_manifest(path).params == {}


def test_sidecar_records_approximate_parameters(tmp_path, gallery) -> None:
    ids, vectors = gallery
    for kind, names in (("faiss-hnsw", {"m", "ef_search"}), ("faiss-ivf", {"nlist", "nprobe"})):
        index = create_index(kind, DIM)
        index.add(ids, vectors)
        path = tmp_path / f"{kind}.faiss"
        save_index(index, path, model_version=MODEL)
        params = json.loads(path.with_suffix(".json").read_text())["params"]
        assert names <= params.keys() and all(params[name] > 0 for name in names)


@pytest.mark.parametrize(
    ("kind", "other"),
    [
        (kind, other)
        for kind in sorted(INDEX_KINDS)
        for other in sorted(INDEX_KINDS)
        if other != kind
    ],
)
def test_file_of_another_kind_is_refused(kind, other, filled, tmp_path) -> None:
    path = tmp_path / "gallery.faiss"
    save_index(filled, path, model_version=MODEL)
    with pytest.raises(IndexCorruptError):
        INDEX_KINDS[other].load(path)
    sidecar = path.with_suffix(".json")
    fields = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**fields, "kind": other}))
    with pytest.raises(IndexCorruptError):
        load_index(path, model_version=MODEL)


@pytest.mark.parametrize(
    "damage",
    ["truncate", "params", "not-json"],
)
def test_damaged_files_are_refused(damage, filled, tmp_path) -> None:
    path = tmp_path / "gallery.faiss"
    save_index(filled, path, model_version=MODEL)
    sidecar = path.with_suffix(".json")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "params":
        fields = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**fields, "params": {"nlist": 7, "m": 3}}))
    else:
        sidecar.write_text("{not json")
    with pytest.raises(IndexLoadError) as raised:
        load_index(path, model_version=MODEL)
    assert isinstance(raised.value, IndexCorruptError)


def test_missing_file_beside_a_sidecar_is_corrupt(filled, tmp_path: Path) -> None:
    path = tmp_path / "gallery.faiss"
    save_index(filled, path, model_version=MODEL)
    path.unlink()
    with pytest.raises(IndexCorruptError):
        load_index(path, model_version=MODEL)
