"""Fixtures for training tests: a few real faces, detected and aligned once per session."""

from pathlib import Path

import pytest

from app.training.chips import ChipCache, ChipSet
from app.training.evaluate_run import batched_embed
from app.training.evaluation import (
    EvaluationSet,
    ModelEvaluation,
    build_evaluation_set,
    evaluate_model,
)
from app.training.face_tree import identities, labelled_photos
from app.vision.backbones.base import Backbone
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
    cache = ChipCache(
        root=root, cache_dir=tmp_path_factory.mktemp("chips"), detector=embedder.detector
    )
    chosen = identities(root)[:IDENTITIES]
    return cache.build(labelled_photos(root, chosen, per_identity=PHOTOS_PER_IDENTITY))


@pytest.fixture(scope="session")
def lfw_evaluation_set(
    faces_dir: Path, embedder: FaceEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> EvaluationSet:
    """All of lfw_mini: photos 1–3 of its 12 people are the gallery, 4–5 the probes."""
    root = faces_dir / "lfw_mini"
    cache = ChipCache(
        root=root, cache_dir=tmp_path_factory.mktemp("lfw-chips"), detector=embedder.detector
    )
    return build_evaluation_set(cache.build(labelled_photos(root, identities(root))))


@pytest.fixture(scope="session")
def lfw_model_evaluation(
    lfw_evaluation_set: EvaluationSet, dlib_backbone: Backbone
) -> ModelEvaluation:
    """dlib-resnet measured on `lfw_evaluation_set`."""
    return evaluate_model("dlib-resnet", batched_embed(dlib_backbone), lfw_evaluation_set)
