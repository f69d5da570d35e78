"""facenet backbones load a local weights file, and refuse clearly without one."""

from pathlib import Path

import numpy as np
import pytest
import torch
from facenet_pytorch import InceptionResnetV1

from app.vision.backbones.registry import create_backbone
from app.vision.backbones.weights import WeightsMissing

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dict shaped like the published VGGFace2 file, with random weights."""
    torch.manual_seed(0)
    network = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631).eval()
    path = tmp_path_factory.mktemp("weights") / "random-vggface2.pt"
    torch.save(network.state_dict(), path)
    return path


def test_loads_a_local_state_dict_and_embeds(weights_file: Path) -> None:
    backbone = create_backbone("facenet-vggface2", device=CPU, weights=weights_file)
    assert backbone.name == "facenet-vggface2"
    assert backbone.input_size == 160 and backbone.embedding_dim == 512
    assert len(backbone.version) == 16
    chips = np.random.default_rng(0).integers(0, 256, (3, 160, 160, 3), dtype=np.uint8)
    vectors = backbone.embed(chips)
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert backbone.embed(chips[:0]).shape == (0, 512)


def test_the_version_is_the_weights_hash(weights_file: Path, tmp_path: Path) -> None:
    first = create_backbone("facenet-casia", device=CPU, weights=weights_file)
    state = torch.load(weights_file, weights_only=True)
    state["last_bn.bias"] += 1.0
    torch.save(state, tmp_path / "changed.pt")
    second = create_backbone("facenet-casia", device=CPU, weights=tmp_path / "changed.pt")
    assert first.version != second.version


@pytest.mark.parametrize(
    ("name", "setting"),
    [
        ("facenet-vggface2", "LINEUP_FACENET_VGGFACE2_WEIGHTS"),
        ("facenet-casia", "LINEUP_FACENET_CASIA_WEIGHTS"),
    ],
)
def test_without_weights_the_error_says_what_to_set(name: str, setting: str) -> None:
    with pytest.raises(WeightsMissing) as raised:
        create_backbone(name, device=CPU)
    message = str(raised.value)
    assert setting in message
    assert "facenet-pytorch/releases" in message
    assert "never downloads" in message


def test_a_wrong_state_dict_is_refused(tmp_path: Path) -> None:
    torch.save({"conv2d_1a.conv.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(RuntimeError):
        create_backbone("facenet-vggface2", device=CPU, weights=tmp_path / "wrong.pt")


def test_unknown_backbone_names_are_listed() -> None:
    with pytest.raises(ValueError, match="dlib-resnet"):
        create_backbone("resnet-9000", device=CPU)
