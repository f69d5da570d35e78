"""EdgeFace: the conversion of the published files, and the float network against references.

The int8 files cannot be a parity reference (dynamic quantisation gives a face
a different embedding in every batch), so the references are: the int8
weights dequantised by torch's own quantised modules (exactly equal), a plain
float32 forward pass of the same network (cosine ≥ 0.9999), and, loosely, the
quantised network at batch 1 (≥ 0.9).
"""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from numpy.typing import NDArray
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from app.training.import_edgeface import (
    LICENCES,
    PUBLISHED_FILES,
    EdgeFaceImportRefused,
    import_edgeface,
)
from app.vision.alignment import align_face
from app.vision.alignment_template import ARCFACE_112
from app.vision.backbones.edgeface import EdgeFaceBackbone
from app.vision.backbones.edgeface_network import build_edgeface_network
from app.vision.backbones.registry import create_backbone
from app.vision.backbones.weights import WeightsMissing
from app.vision.detection import MtcnnDetector

SHARED = Path(__file__).resolve().parents[4] / "shared" / "models" / "edgeface"
MODELS = Path(__file__).resolve().parents[3] / "models"
CPU = torch.device("cpu")
NAMES = sorted(PUBLISHED_FILES)

Chips = NDArray[np.uint8]


@pytest.fixture(scope="module")
def chips(faces_dir: Path, detector: MtcnnDetector) -> Chips:
    """ArcFace-aligned chips of 36 real lfw_mini photos, the most probable face of each."""
    made = []
    for photo in sorted((faces_dir / "lfw_mini").glob("*/*.jpg"))[:36]:
        image = Image.open(photo).convert("RGB")
        found = detector.detect(image)
        if found:
            best = max(found, key=lambda face: face.probability)
            made.append(align_face(image, best.landmarks, ARCFACE_112))
    assert len(made) >= 30
    return np.stack(made)


@pytest.fixture(scope="module", params=NAMES)
def backbone(request: pytest.FixtureRequest) -> EdgeFaceBackbone:
    built = create_backbone(request.param, device=CPU, models_dir=MODELS)
    assert isinstance(built, EdgeFaceBackbone)
    return built


def cosines(first: NDArray[np.float32], second: NDArray[np.float32]) -> NDArray[np.float32]:
    return (first * second).sum(axis=1)


def test_the_conversion_reproduces_the_committed_files(tmp_path: Path) -> None:
    imported = import_edgeface(SHARED, tmp_path)
    assert [model.name for model in imported] == NAMES
    for name in NAMES:
        for file in ("weights.safetensors", *LICENCES):
            made, committed = tmp_path / name / file, MODELS / name / file
            assert made.read_bytes() == committed.read_bytes(), f"{name}/{file}"
        made_card, committed_card = (
            json.loads((models / name / "card.json").read_text()) for models in (tmp_path, MODELS)
        )
        for field in ("weights_hash", "embedding_dim", "alignment", "provenance"):
            assert made_card[field] == committed_card[field], f"{name}: {field}"


def test_a_corrupted_copy_is_refused_naming_the_file(tmp_path: Path) -> None:
    source = tmp_path / "edgeface"
    shutil.copytree(SHARED, source)
    published = source / PUBLISHED_FILES["edgeface-xs"]
    published.chmod(0o644)
    data = bytearray(published.read_bytes())
    data[len(data) // 2] ^= 0xFF
    published.write_bytes(bytes(data))
    with pytest.raises(EdgeFaceImportRefused, match=r"edgeface_xs_q\.pt is not the published"):
        import_edgeface(source, tmp_path / "models")
    assert not (tmp_path / "models" / "edgeface-xs" / "weights.safetensors").exists()


def test_a_file_the_readme_does_not_vouch_for_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "edgeface"
    shutil.copytree(SHARED, source)
    readme = source / "README.md"
    readme.chmod(0o644)
    readme.write_text("# EdgeFace\n")
    with pytest.raises(EdgeFaceImportRefused, match="publishes no sha256"):
        import_edgeface(source, tmp_path / "models")


class _Published(nn.Module):
    """The published files' layout: the network under `model.`."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.model = network


@pytest.mark.parametrize("name", NAMES)
def test_the_float_weights_are_the_int8_weights_dequantised_exactly(name: str) -> None:
    quantised = _quantised_network(name)
    converted = load_file(MODELS / name / "weights.safetensors")
    layers = [
        (layer_name, layer)
        for layer_name, layer in quantised.named_modules()
        if isinstance(layer, torch.ao.nn.quantized.dynamic.Linear)
    ]
    assert len(layers) > 30
    for layer_name, layer in layers:
        key = layer_name.removeprefix("model.")
        assert torch.equal(layer.weight().dequantize(), converted[f"{key}.weight"]), key
        assert torch.equal(layer.bias(), converted[f"{key}.bias"]), key


def test_lineups_inference_matches_a_plain_float32_forward_pass(
    backbone: EdgeFaceBackbone, chips: Chips
) -> None:
    network = build_edgeface_network(backbone.name)
    network.load_state_dict(load_file(MODELS / backbone.name / "weights.safetensors"))
    pixels = (torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        plain = F.normalize(network(pixels), dim=1).numpy()
    assert cosines(backbone.embed(chips), plain).min() >= 0.9999


def test_the_quantised_network_at_batch_one_agrees_loosely(
    backbone: EdgeFaceBackbone, chips: Chips
) -> None:
    quantised = _quantised_network(backbone.name)
    pixels = (torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        alone = [F.normalize(quantised.model(pixels[i : i + 1]), dim=1) for i in range(len(chips))]
    agreement = cosines(backbone.embed(chips), torch.cat(alone).numpy())
    assert agreement.min() >= 0.9, agreement.min()


def test_an_embedding_does_not_depend_on_its_batch(
    backbone: EdgeFaceBackbone, chips: Chips
) -> None:
    together = backbone.embed(chips)
    alone = np.concatenate([backbone.embed(chips[i : i + 1]) for i in range(len(chips))])
    assert cosines(together, alone).min() >= 0.9999
    assert together.shape == (len(chips), 512)
    assert np.allclose(np.linalg.norm(together, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("precision", ["bfloat16"])
def test_reduced_precision_stays_close_to_float32(
    backbone: EdgeFaceBackbone, chips: Chips, precision: str
) -> None:
    reduced = EdgeFaceBackbone(
        name=backbone.name, device=CPU, models_dir=MODELS, precision=precision
    )
    assert cosines(backbone.embed(chips), reduced.embed(chips)).min() >= 0.998
    alone = np.concatenate([reduced.embed(chips[i : i + 1]) for i in range(len(chips))])
    assert cosines(reduced.embed(chips), alone).min() >= 0.9999


def test_the_wrong_chip_size_is_refused(backbone: EdgeFaceBackbone) -> None:
    with pytest.raises(ValueError, match="112x112x3"):
        backbone.embed(np.zeros((1, 150, 150, 3), dtype=np.uint8))


def test_missing_weights_say_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissing, match="lineup models import-edgeface"):
        create_backbone("edgeface-xs", device=CPU, models_dir=tmp_path)


def _quantised_network(name: str) -> _Published:
    """The published int8 file, loaded as torch's dynamically quantised network."""
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated: the reason to convert
        warnings.simplefilter("ignore")
        published = _Published(build_edgeface_network(name))
        quantised = torch.ao.quantization.quantize_dynamic(published, {nn.Linear}, torch.qint8)
        state = torch.load(SHARED / PUBLISHED_FILES[name], map_location="cpu", weights_only=True)
        quantised.load_state_dict(state)
    return quantised.eval()
