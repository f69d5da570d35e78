"""Fixtures for training tests: a few real faces, detected and aligned once per session."""

from pathlib import Path

import pytest

from app.training.chips import ChipCache, ChipSet
from app.training.face_tree import identities, labelled_photos
from app.vision.embedder import FaceEmbedder

# Few and small on purpose: every photo costs an MTCNN pass, every chip a forward pass.
IDENTITIES = 4
PHOTOS_PER_IDENTITY = 2


@pytest.fixture(scope="session")
def lfw_chips(
    faces_dir: Path, embedder: FaceEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> ChipSet:
    """Chips of the first 4 lfw_mini identities, 2 photos each, cached in a temp dir."""
    root = faces_dir / "lfw_mini"
    cache = ChipCache(root=root, cache_dir=tmp_path_factory.mktemp("chips"), embedder=embedder)
    chosen = identities(root)[:IDENTITIES]
    return cache.build(labelled_photos(root, chosen, per_identity=PHOTOS_PER_IDENTITY))
