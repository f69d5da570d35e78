"""What only approximate kinds do: recall, tombstones and rebuilds, and choosing a kind."""

import numpy as np
import pytest

from app.index import (
    AUTO_FLAT_LIMIT,
    FaissIndex,
    HnswIndex,
    IvfIndex,
    create_index,
    resolve_kind,
)
from app.index.ivf_index import IVF_MIN_TRAIN, nlist_for

RECALL_GALLERY = 20_000
RECALL_DIM = 128


def clustered(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Unit vectors around 200 identities, the way a gallery's embeddings gather."""
    centres = rng.standard_normal((200, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * (0.35 / np.sqrt(dim))
    points = centres[rng.integers(0, 200, n)] + noise
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def recall_gallery() -> tuple[np.ndarray, np.ndarray, list[set[int]]]:
    rng = np.random.default_rng(7)
    vectors = clustered(rng, RECALL_GALLERY + 200, RECALL_DIM)
    gallery, queries = vectors[:RECALL_GALLERY], vectors[RECALL_GALLERY:]
    flat = FaissIndex(RECALL_DIM)
    flat.add(np.arange(RECALL_GALLERY), gallery)
    truth = [{hit.id for hit in row} for row in flat.search(queries, 10)]
    return gallery, queries, truth


@pytest.mark.parametrize("index_class", [HnswIndex, IvfIndex])
def test_recall_at_10_against_flat(index_class, recall_gallery) -> None:
    gallery, queries, truth = recall_gallery
    index = index_class(RECALL_DIM)
    index.add(np.arange(RECALL_GALLERY), gallery)
    found = [{hit.id for hit in row} for row in index.search(queries, 10)]
    recall = np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.99


def test_hnsw_tombstones_are_skipped_then_rebuilt_away(unit_vectors) -> None:
    vectors = unit_vectors(1_000, 16)
    index = HnswIndex(16)
    index.add(np.arange(1_000), vectors)
    index.remove(np.arange(150))
    assert index._store.dead == 150  # below the limit: tombstones, no rebuild
    hits = index.search(vectors[:200], 3)
    assert all(hit.id >= 150 for row in hits for hit in row)
    assert all(len(row) == 3 for row in hits)
    index.remove(np.arange(150, 260))
    assert index._store.dead == 0 and index._store.rows == 740
    assert [row[0].id for row in index.search(vectors[260:300], 1)] == list(range(260, 300))


def test_ivf_trains_once_big_enough_and_regrows(unit_vectors) -> None:
    vectors = unit_vectors(4 * IVF_MIN_TRAIN + 1, 8)
    index = IvfIndex(8)
    index.add(np.arange(IVF_MIN_TRAIN - 1), vectors[: IVF_MIN_TRAIN - 1])
    assert index.parameters()["nlist"] == 0  # exact until it can be trained
    index.add([IVF_MIN_TRAIN - 1], vectors[IVF_MIN_TRAIN - 1 : IVF_MIN_TRAIN])
    assert index.parameters()["nlist"] == nlist_for(IVF_MIN_TRAIN)
    index.add(np.arange(IVF_MIN_TRAIN, vectors.shape[0]), vectors[IVF_MIN_TRAIN:])
    assert index.parameters()["trained_on"] == vectors.shape[0]
    index.remove(np.arange(10))
    assert len(index) == vectors.shape[0] - 10 and 5 not in index


def test_nlist_follows_the_gallery_size() -> None:
    assert nlist_for(20_000) == 512  # 4·√n = 566, capped at 39 faces per list
    assert nlist_for(1_000_000) == 4_000
    assert nlist_for(10) == 1


@pytest.mark.parametrize(
    ("choice", "size", "kind"),
    [
        ("flat", 10**7, "faiss-flat"),
        ("hnsw", 0, "faiss-hnsw"),
        ("ivf", 0, "faiss-ivf"),
        ("auto", AUTO_FLAT_LIMIT, "faiss-flat"),
        ("auto", AUTO_FLAT_LIMIT + 1, "faiss-hnsw"),
        ("faiss-ivf", 0, "faiss-ivf"),
    ],
)
def test_kind_is_resolved_from_the_setting(choice, size, kind) -> None:
    assert resolve_kind(choice, size) == kind
    assert create_index(choice, 8, expected_size=size).kind == kind


def test_unknown_choice_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="auto, flat, hnsw, ivf"):
        create_index("annoy", 8)
