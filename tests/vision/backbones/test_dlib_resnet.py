"""The PyTorch module itself: dlib's padded add, trainability, folding, weight checks."""

import dataclasses

import pytest
import torch

from app.vision.backbones.dlib_backbone import default_weights_path
from app.vision.backbones.dlib_format import DlibModelFormatError, DlibNetwork, read_network_file
from app.vision.backbones.dlib_resnet import (
    Affine,
    DlibFaceResNet,
    add_zero_padded,
    fold_for_inference,
    load_dlib_weights,
)


@pytest.fixture(scope="module")
def network() -> DlibNetwork:
    return read_network_file(default_weights_path())


@pytest.fixture(scope="module")
def model(network: DlibNetwork) -> DlibFaceResNet:
    model = DlibFaceResNet()
    load_dlib_weights(model, network)
    return model.eval()


def test_add_zero_padded_pads_the_smaller_tensor_at_the_end() -> None:
    conv_branch = torch.ones(1, 2, 1, 1)  # more channels, smaller plane
    pool_branch = torch.arange(4.0).view(1, 1, 2, 2)
    total = add_zero_padded(conv_branch, pool_branch)
    expected = torch.tensor([[[[1.0, 1.0], [2.0, 3.0]], [[1.0, 0.0], [0.0, 0.0]]]])
    assert torch.equal(total, expected.view(1, 2, 2, 2))
    assert torch.equal(add_zero_padded(pool_branch, conv_branch), total)


def test_affine_scales_and_shifts_each_channel() -> None:
    affine = Affine(2)
    with torch.no_grad():
        affine.scale.copy_(torch.tensor([2.0, -1.0]))
        affine.shift.copy_(torch.tensor([0.5, 3.0]))
    x = torch.ones(1, 2, 1, 1)
    assert affine(x).flatten().tolist() == [2.5, 2.0]


def test_module_is_trainable_including_affine_scales(model: DlibFaceResNet) -> None:
    named = dict(model.named_parameters())
    assert all(p.requires_grad for p in named.values())
    assert "stem_affine.scale" in named
    assert "units.0.affine1.scale" in named
    assert sum(p.numel() for p in named.values()) == 5_614_592
    train_copy = DlibFaceResNet()
    train_copy.load_state_dict(model.state_dict())
    loss = train_copy.train()(torch.rand(2, 3, 150, 150) * 255).square().sum()
    loss.backward()
    scale = train_copy.stem_affine.scale
    assert isinstance(scale, torch.nn.Parameter)
    assert scale.grad is not None and scale.grad.abs().sum() > 0


def test_folded_copy_matches_and_leaves_the_original_alone(model: DlibFaceResNet) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_for_inference(model)
    assert not folded.training
    assert not any(p.requires_grad for p in folded.parameters())
    assert not any(isinstance(m, Affine) for m in folded.modules())
    assert folded.stem_conv.weight.is_contiguous(memory_format=torch.channels_last)
    pixels = torch.rand(3, 3, 150, 150, generator=torch.Generator().manual_seed(0)) * 255
    with torch.inference_mode():
        torch.testing.assert_close(folded(pixels), model(pixels), atol=1e-5, rtol=0)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_output_is_raw_128_d(model: DlibFaceResNet) -> None:
    with torch.inference_mode():
        out = model(torch.full((1, 3, 150, 150), 128.0))
    assert out.shape == (1, 128)


def test_loading_a_different_network_is_refused(network: DlibNetwork) -> None:
    truncated = dataclasses.replace(network, layers=network.layers[:-4] + network.layers[-2:])
    with pytest.raises(DlibModelFormatError, match="not dlib's face ResNet"):
        load_dlib_weights(DlibFaceResNet(), truncated)
    wrong_size = dataclasses.replace(network, input_size=(112, 112))
    with pytest.raises(DlibModelFormatError, match="150px"):
        load_dlib_weights(DlibFaceResNet(), wrong_size)
