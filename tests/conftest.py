"""Fixtures shared by the whole test suite: the photos, and the real models loaded once."""

from pathlib import Path

import pytest
import torch

from app.vision.backbones.base import Backbone
from app.vision.backbones.registry import create_backbone
from app.vision.detection import MtcnnDetector
from app.vision.embedder import FaceEmbedder

# The shared face photos sit beside the project root on every machine (see shared/faces/README.md).
FACES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
CPU = torch.device("cpu")


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """Root of the shared, labelled face photos (`lfw_mini/`, `johns/`, ...)."""
    assert FACES_DIR.is_dir(), f"shared face photos missing at {FACES_DIR}"
    return FACES_DIR


@pytest.fixture(scope="session")
def detector() -> MtcnnDetector:
    return MtcnnDetector(device=CPU)


@pytest.fixture(scope="session")
def dlib_backbone() -> Backbone:
    return create_backbone("dlib-resnet", device=CPU)


@pytest.fixture(scope="session")
def embedder(detector: MtcnnDetector, dlib_backbone: Backbone) -> FaceEmbedder:
    return FaceEmbedder(detector=detector, backbone=dlib_backbone)
