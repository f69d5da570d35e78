"""Fine-tuned models as backbones, by folder name: loaded, versioned and embedding like training.

The weights are written the way training writes them (`save_weights`), from
dlib's own network: without a head they must embed exactly as dlib's backbone
does, with one exactly as the training code's `embed_chips`.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from pydantic import ValidationError

from app.config import Settings
from app.training.checkpoints import save_weights
from app.training.network import embed_chips
from app.vision.alignment_template import DLIB_150
from app.vision.backbones.base import Backbone
from app.vision.backbones.dlib_backbone import default_weights_path
from app.vision.backbones.dlib_resnet import DlibFaceResNet
from app.vision.backbones.embedding_network import EmbeddingNetwork
from app.vision.backbones.finetuned import WEIGHTS_FILE, FineTunedBackbone, finetuned_models
from app.vision.backbones.registry import UnknownBackbone, create_backbone
from app.vision.backbones.weights import weights_version
from app.vision.embedder import FaceEmbedder
from app.vision.images import decode_image

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def chips(faces_dir: Path, embedder: FaceEmbedder) -> NDArray[np.uint8]:
    """Real aligned chips: the faces of three lfw_mini photos."""
    found = [
        face.chip
        for person in ("Tom_Hanks", "Emma_Watson", "Heidi_Klum")
        for face in embedder.embed_image(
            decode_image((faces_dir / "lfw_mini" / person / f"{person}_0001.jpg").read_bytes())
        )
    ]
    return np.stack(found)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`plain` (dlib's weights, no head), `headed` (a 64-d head) and a folder without weights."""
    root = tmp_path_factory.mktemp("models")
    dlib = DlibFaceResNet.from_dlib_file(default_weights_path())
    for name, head_dim in (("plain", None), ("headed", 64)):
        (root / name).mkdir()
        save_weights(root / name, EmbeddingNetwork(dlib, head_dim=head_dim, seed=4))
    (root / "empty").mkdir()
    (root / "dlib-resnet").mkdir()  # a card-only folder, as in the repository's models/
    return root


def test_a_fine_tuned_model_is_found_by_its_folder_name(models_dir: Path) -> None:
    assert finetuned_models(models_dir) == ["headed", "plain"]
    backbone = create_backbone("headed", device=CPU, models_dir=models_dir)
    assert isinstance(backbone, FineTunedBackbone) and isinstance(backbone, Backbone)
    assert backbone.name == "headed"
    assert backbone.version == weights_version(models_dir / "headed" / WEIGHTS_FILE)
    assert (backbone.embedding_dim, backbone.input_size, backbone.template) == (64, 150, DLIB_150)
    plain = create_backbone("plain", device=CPU, models_dir=models_dir)
    assert plain.embedding_dim == 128 and plain.version != backbone.version


def test_without_a_head_it_embeds_as_dlib_does(
    models_dir: Path, chips: NDArray[np.uint8], dlib_backbone: Backbone
) -> None:
    plain = create_backbone("plain", device=CPU, models_dir=models_dir)
    vectors = plain.embed(chips)
    assert vectors.dtype == np.float32 and vectors.shape == (len(chips), 128)
    np.testing.assert_allclose(vectors, dlib_backbone.embed(chips), atol=1e-5)


def test_with_a_head_it_embeds_as_training_does(models_dir: Path, chips: NDArray[np.uint8]) -> None:
    headed = create_backbone("headed", device=CPU, models_dir=models_dir)
    vectors = headed.embed(chips)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    dlib = DlibFaceResNet.from_dlib_file(default_weights_path())
    trained = EmbeddingNetwork(dlib, head_dim=64, seed=4)
    np.testing.assert_allclose(vectors, embed_chips(trained, chips, device=CPU), atol=1e-5)
    assert headed.embed(chips[:0]).shape == (0, 64)
    with pytest.raises(ValueError, match="uint8"):
        headed.embed(chips.astype(np.float32))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["empty", "nowhere", "../plain", "Plain"])
def test_unknown_names_list_the_built_ins_and_the_models_found(models_dir: Path, name: str) -> None:
    with pytest.raises(UnknownBackbone) as refused:
        create_backbone(name, device=CPU, models_dir=models_dir)
    message = str(refused.value)
    assert "dlib-resnet, edgeface-xs, edgeface-xxs, facenet-vggface2, facenet-casia" in message
    assert "headed, plain" in message
    assert isinstance(refused.value, ValueError)


def test_the_setting_accepts_a_fine_tuned_model_and_explains_a_wrong_one(
    models_dir: Path,
) -> None:
    assert Settings(backbone="headed", models_dir=models_dir).backbone == "headed"
    with pytest.raises(ValidationError, match=r"fine-tuned model folder .*\(headed, plain\)"):
        Settings(backbone="empty", models_dir=models_dir)
