"""The fine-tuning network: what is frozen, who learns how fast, and what the head does."""

import numpy as np
import pytest
import torch

from app.training.network import (
    BLOCKS,
    EmbeddingNetwork,
    block_modules,
    embed_chips,
    freeze_blocks,
    parameter_groups,
    pretrained_network,
)
from app.vision.backbones.chip_input import chip_pixels
from app.vision.backbones.dlib_resnet import DlibFaceResNet

CPU = torch.device("cpu")


def network(head_dim: int | None = None) -> EmbeddingNetwork:
    torch.manual_seed(0)
    return EmbeddingNetwork(DlibFaceResNet(), head_dim=head_dim)


def trainable_blocks(net: EmbeddingNetwork) -> list[str]:
    blocks = block_modules(net.backbone)
    return [
        name
        for name, modules in blocks.items()
        if any(p.requires_grad for m in modules for p in m.parameters())
    ]


def test_freeze_depth_freezes_blocks_from_the_input_side() -> None:
    net = network()
    freeze_blocks(net, depth=3)
    assert trainable_blocks(net) == ["stage3", "stage4", "stage5", "fc"]
    freeze_blocks(net, depth=0)
    assert trainable_blocks(net) == list(BLOCKS)
    freeze_blocks(net, depth=len(BLOCKS))
    assert trainable_blocks(net) == []
    with pytest.raises(ValueError, match="freeze depth"):
        freeze_blocks(net, depth=len(BLOCKS) + 1)


def test_blocks_cover_every_backbone_parameter_once() -> None:
    net = network()
    covered = [
        id(p) for ms in block_modules(net.backbone).values() for m in ms for p in m.parameters()
    ]
    assert sorted(covered) == sorted(id(p) for p in net.backbone.parameters())


def test_pretrained_layers_learn_slower_than_the_head() -> None:
    net = network(head_dim=64)
    freeze_blocks(net, depth=6)  # only the backbone's fc still trains
    groups = parameter_groups(net, lr=1e-3, pretrained_lr_factor=0.1)
    fc_rms = float(net.backbone.fc.weight.detach().pow(2).mean().sqrt())
    assert [(g["name"], g["lr"]) for g in groups] == [
        ("pretrained.fc.weight", pytest.approx(1e-4 * fc_rms)),
        ("head", 1e-3),
    ]
    assert groups[0]["params"] == [net.backbone.fc.weight]
    freeze_blocks(net, depth=len(BLOCKS))
    assert [g["name"] for g in parameter_groups(net, lr=1e-3, pretrained_lr_factor=0.1)] == ["head"]
    bare = network()
    freeze_blocks(bare, depth=len(BLOCKS))
    with pytest.raises(ValueError, match="nothing to train"):
        parameter_groups(bare, lr=1e-3, pretrained_lr_factor=0.1)


def test_each_pretrained_tensor_learns_in_proportion_to_its_own_size() -> None:
    """dlib's weights span two orders of magnitude; Adam's step must follow them."""
    net = pretrained_network(freeze_depth=3)
    groups = {g["name"]: g for g in parameter_groups(net, lr=1e-3, pretrained_lr_factor=0.3)}
    conv = net.backbone.units[12].conv1
    rms = float(conv.weight.detach().pow(2).mean().sqrt())
    assert rms < 1e-3  # a late convolution's weights are tiny
    assert groups["pretrained.units.12.conv1.weight"]["lr"] == pytest.approx(3e-4 * rms)
    bias = groups["pretrained.units.12.conv1.bias"]  # nearly zero in dlib's file
    assert bias["lr"] < groups["pretrained.units.12.affine1.shift"]["lr"] / 100
    assert not any(name.startswith("pretrained.stem") for name in groups)  # frozen


def test_embeddings_have_unit_length_and_the_heads_size() -> None:
    chips = np.random.default_rng(0).integers(0, 256, size=(3, 150, 150, 3), dtype=np.uint8)
    for head_dim, expected in ((None, 128), (32, 32)):
        embeddings = embed_chips(network(head_dim), chips, device=CPU, batch_size=2)
        assert embeddings.shape == (3, expected) and embeddings.dtype == np.float32
        assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_a_full_size_head_starts_orthogonal_and_keeps_every_similarity() -> None:
    chips = np.random.default_rng(1).integers(0, 256, size=(4, 150, 150, 3), dtype=np.uint8)
    plain = network()
    headed = EmbeddingNetwork(plain.backbone, head_dim=128, seed=5)
    before = embed_chips(plain, chips, device=CPU)
    after = embed_chips(headed, chips, device=CPU)
    assert not np.allclose(before, after, atol=1e-3)
    assert np.allclose(before @ before.T, after @ after.T, atol=1e-5)


def test_the_head_depends_only_on_its_seed() -> None:
    torch.manual_seed(123)
    first = EmbeddingNetwork(DlibFaceResNet(), head_dim=16, seed=9)
    torch.manual_seed(456)
    second = EmbeddingNetwork(DlibFaceResNet(), head_dim=16, seed=9)
    assert first.head is not None and second.head is not None
    assert torch.equal(first.head.weight, second.head.weight)


def test_chips_become_channels_first_floats() -> None:
    chips = np.zeros((2, 150, 150, 3), dtype=np.uint8)
    chips[:, :, :, 1] = 200
    pixels = chip_pixels(chips, CPU)
    assert pixels.shape == (2, 3, 150, 150) and pixels.dtype == torch.float32
    assert pixels[:, 1].min().item() == 200.0 and pixels[:, 0].max().item() == 0.0
