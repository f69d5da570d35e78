"""FaissIndex against a numpy oracle, and its refusal of bad input."""

import numpy as np
import pytest

from app.index import FaissIndex, SearchHit, VectorIndex

DIM = 16


def as_pairs(hits: list[SearchHit]) -> list[tuple[int, float]]:
    return [(hit.id, hit.similarity) for hit in hits]


def assert_same_results(
    got: list[list[SearchHit]], expected: list[list[tuple[int, float]]]
) -> None:
    assert len(got) == len(expected)
    for hits, oracle in zip(got, expected, strict=True):
        assert [hit.id for hit in hits] == [face_id for face_id, _ in oracle]
        np.testing.assert_allclose(
            [hit.similarity for hit in hits], [score for _, score in oracle], atol=1e-5
        )


@pytest.fixture
def filled(unit_vectors, rng) -> tuple[FaissIndex, np.ndarray, np.ndarray]:
    vectors = unit_vectors(200, DIM)
    ids = rng.permutation(10_000)[:200].astype(np.int64)
    index = FaissIndex(DIM)
    index.add(ids, vectors)
    return index, ids, vectors


def test_satisfies_the_protocol() -> None:
    assert isinstance(FaissIndex(DIM), VectorIndex)


def test_search_matches_numpy_top_k(filled, unit_vectors, numpy_top_k) -> None:
    index, ids, vectors = filled
    queries = unit_vectors(25, DIM)
    assert_same_results(index.search(queries, 10), numpy_top_k(vectors, ids, queries, 10))


def test_a_stored_vector_finds_itself_first(filled) -> None:
    index, ids, vectors = filled
    hits = index.search(vectors[:5], 1)
    assert [row[0].id for row in hits] == ids[:5].tolist()
    assert all(row[0].similarity == pytest.approx(1.0, abs=1e-5) for row in hits)


def test_k_above_count_returns_only_real_hits(unit_vectors, numpy_top_k) -> None:
    vectors = unit_vectors(3, DIM)
    ids = np.array([7, 8, 9])
    index = FaissIndex(DIM)
    index.add(ids, vectors)
    queries = unit_vectors(4, DIM)
    results = index.search(queries, 50)
    assert all(len(row) == 3 for row in results)
    assert all(hit.id >= 0 for row in results for hit in row)
    assert_same_results(results, numpy_top_k(vectors, ids, queries, 3))


def test_empty_index_returns_empty_lists(unit_vectors) -> None:
    assert FaissIndex(DIM).search(unit_vectors(3, DIM), 5) == [[], [], []]


def test_no_queries_returns_no_rows(filled) -> None:
    index, _, _ = filled
    assert index.search(np.empty((0, DIM), dtype=np.float32), 5) == []


def test_removed_ids_are_never_returned(filled, unit_vectors, numpy_top_k) -> None:
    index, ids, vectors = filled
    gone = ids[::3]
    assert index.remove(np.concatenate([gone, gone[:2], [10_000_001]])) == gone.size
    kept = np.ones(ids.size, dtype=bool)
    kept[::3] = False
    assert len(index) == int(kept.sum())
    assert sorted(index.ids().tolist()) == sorted(ids[kept].tolist())
    assert all(int(face_id) not in index for face_id in gone)
    queries = np.concatenate([vectors[gone.size // 2 :: 3], unit_vectors(10, DIM)])
    results = index.search(queries, ids.size)
    assert not set(gone.tolist()) & {hit.id for row in results for hit in row}
    assert_same_results(results, numpy_top_k(vectors[kept], ids[kept], queries, ids.size))


def test_removed_id_can_be_added_again(filled, unit_vectors) -> None:
    index, ids, _ = filled
    index.remove(ids[:1])
    replacement = unit_vectors(1, DIM)
    index.add(ids[:1], replacement)
    assert index.search(replacement, 1)[0][0].id == ids[0]


def test_remove_nothing_returns_zero(filled) -> None:
    index, ids, _ = filled
    assert index.remove([]) == 0
    assert index.remove([99_999_999]) == 0
    assert len(index) == ids.size


def test_len_contains_and_ids(filled) -> None:
    index, ids, _ = filled
    assert len(index) == ids.size
    assert int(ids[0]) in index and np.int64(ids[1]) in index
    assert 10_000_000 not in index
    np.testing.assert_array_equal(index.ids(), ids)
    assert index.dim == DIM


@pytest.mark.parametrize(
    ("make_ids", "make_vectors", "message"),
    [
        (lambda ids: ids[:2], lambda v: v[:2], "already in the index"),
        (lambda ids: [1_000_001, 1_000_001], lambda v: v[:2], "unique within a batch"),
        (lambda ids: [1_000_001], lambda v: v[:1, :-1], "shape"),
        (lambda ids: [1_000_001, 1_000_002], lambda v: v[:1], "2 ids for 1 vectors"),
        (lambda ids: [-1], lambda v: v[:1], "non-negative"),
        (lambda ids: [1.0], lambda v: v[:1], "integers"),
        (lambda ids: [1_000_001], lambda v: v[:1] * 2, "L2-normalised"),
        (lambda ids: [1_000_001], lambda v: v[0], "shape"),
        (lambda ids: [1_000_001], lambda v: v[:1].astype(np.int32), "floating point"),
    ],
)
def test_bad_add_is_refused_and_changes_nothing(filled, make_ids, make_vectors, message) -> None:
    index, ids, vectors = filled
    before = index.search(vectors[:3], 5)
    with pytest.raises(ValueError, match=message):
        index.add(make_ids(ids), make_vectors(vectors))
    assert len(index) == ids.size
    np.testing.assert_array_equal(index.ids(), ids)
    assert index.search(vectors[:3], 5) == before


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_vectors_are_refused(filled, bad) -> None:
    index, ids, vectors = filled
    poisoned = vectors[:2].copy()
    poisoned[1, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.add([1_000_001, 1_000_002], poisoned)
    assert len(index) == ids.size and 1_000_001 not in index


def test_bad_queries_are_refused(filled) -> None:
    index, _, vectors = filled
    with pytest.raises(ValueError, match="shape"):
        index.search(vectors[:, :-1], 3)
    with pytest.raises(ValueError, match="shape"):
        index.search(vectors[0], 3)
    nan_query = vectors[:1].copy()
    nan_query[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        index.search(nan_query, 3)


@pytest.mark.parametrize("k", [0, -1, True, 2.0])
def test_bad_k_is_refused(filled, k) -> None:
    index, _, vectors = filled
    with pytest.raises(ValueError, match="k must be"):
        index.search(vectors[:1], k)


@pytest.mark.parametrize("dim", [0, -3, True])
def test_bad_dim_is_refused(dim) -> None:
    with pytest.raises(ValueError, match="dim must be"):
        FaissIndex(dim)


def test_float64_input_is_accepted(unit_vectors) -> None:
    vectors = unit_vectors(4, DIM).astype(np.float64)
    index = FaissIndex(DIM)
    index.add(np.arange(4, dtype=np.uint32), vectors)
    assert index.search(vectors[2:3], 1)[0][0].id == 2
