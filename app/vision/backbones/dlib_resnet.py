"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1`) in PyTorch.

`DlibFaceResNet` is an ordinary trainable module with dlib's exact
architecture (29 convolutions, 5.6 M parameters), so its weights can be
loaded from dlib's file and fine-tuned. `fold_for_inference` turns it into a
faster eval-only copy. Both return dlib's raw, un-normalised 128-d output
(norm ≈ 1.5), which is what dlib's own `compute_face_descriptor` returns.
"""

import copy
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import Tensor, nn

from app.vision.backbones.dlib_format import (
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    DlibModelFormatError,
    DlibNetwork,
    FcLayer,
    PoolLayer,
    ReluLayer,
    read_network_file,
)

INPUT_SIZE = 150
EMBEDDING_DIM = 128
# (channels, units, whether the first unit halves the resolution), input side first.
# The 64-channel stage has a down unit and three plain ones: that is what the file holds.
STAGES: tuple[tuple[int, int, bool], ...] = (
    (32, 3, False),
    (64, 4, True),
    (128, 3, True),
    (256, 3, True),
    (256, 1, True),
)
# dlib's input layer divides the mean-subtracted pixels by this.
_PIXEL_SCALE = 256.0


class Affine(nn.Module):
    """Learnable per-channel scale and shift: dlib's `affine` (a frozen batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        """Scale and shift each channel of an NxCxHxW tensor."""
        return x * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)


def add_zero_padded(a: Tensor, b: Tensor) -> Tensor:
    """Add two NxCxHxW tensors the way dlib's `add_prev` does.

    Where their sizes differ the smaller one is zero-padded at the end of the
    channel, height and width axes, so the result takes the larger of each.
    """
    size = [max(sa, sb) for sa, sb in zip(a.shape[1:], b.shape[1:], strict=True)]
    return _pad_to(a, size) + _pad_to(b, size)


def _pad_to(x: Tensor, size: list[int]) -> Tensor:
    channels, height, width = size
    if list(x.shape[1:]) == size:
        return x
    # F.pad's pairs run from the last axis backwards: width, height, channels.
    pads = (0, width - x.shape[3], 0, height - x.shape[2], 0, channels - x.shape[1])
    return F.pad(x, pads)


class ResidualUnit(nn.Module):
    """conv3x3 → affine → relu → conv3x3 → affine, added to the shortcut, then relu.

    A down unit's first conv has stride 2 and no padding (dlib pads only
    stride-1 convs) and its shortcut is a 2x2 stride-2 average pool.
    """

    def __init__(self, in_channels: int, out_channels: int, *, down: bool) -> None:
        super().__init__()
        stride, padding = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=padding)
        self.affine1: nn.Module = Affine(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.affine2: nn.Module = Affine(out_channels)
        self.shortcut: nn.Module = nn.AvgPool2d(2, stride=2) if down else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """Apply the unit to an NxCxHxW tensor."""
        y = F.relu(self.affine1(self.conv1(x)))
        y = self.affine2(self.conv2(y))
        return F.relu(add_zero_padded(y, self.shortcut(x)))


class DlibFaceResNet(nn.Module):
    """dlib's face ResNet: 150x150 RGB chips → raw 128-d descriptors.

    Input: a float tensor Nx3x150x150 of RGB pixel values in 0..255 (dlib's
    chip, channels first). The module subtracts dlib's channel means and
    divides by 256 itself. Output: Nx128, not normalised; L2-normalise it
    for cosine similarity.
    """

    def __init__(self) -> None:
        super().__init__()
        self.channel_means: Tensor
        self.register_buffer("channel_means", torch.zeros(3))
        self.stem_conv = nn.Conv2d(3, 32, 7, stride=2)
        self.stem_affine: nn.Module = Affine(32)
        self.stem_pool = nn.MaxPool2d(3, stride=2)
        self.units = nn.Sequential(*_build_units())
        self.fc = nn.Linear(STAGES[-1][0], EMBEDDING_DIM, bias=False)

    def forward(self, pixels: Tensor) -> Tensor:
        """Raw (un-normalised) descriptors for an Nx3x150x150 batch of 0..255 RGB."""
        x = (pixels - self.channel_means.view(1, 3, 1, 1)) / _PIXEL_SCALE
        x = self.stem_pool(F.relu(self.stem_affine(self.stem_conv(x))))
        x = self.units(x)
        descriptors: Tensor = self.fc(x.mean(dim=(2, 3)))
        return descriptors

    @classmethod
    def from_dlib_file(cls, path: Path) -> "DlibFaceResNet":
        """A model holding the weights of dlib's `.dat` file at `path`."""
        model = cls()
        load_dlib_weights(model, read_network_file(path))
        return model


def _build_units() -> list[ResidualUnit]:
    units: list[ResidualUnit] = []
    in_channels = STAGES[0][0]
    for channels, count, down in STAGES:
        for index in range(count):
            units.append(ResidualUnit(in_channels, channels, down=down and index == 0))
            in_channels = channels
    return units


def conv_affine_pairs(model: DlibFaceResNet) -> list[tuple[nn.Conv2d, nn.Module]]:
    """Each convolution with the affine that follows it, input side first."""
    pairs: list[tuple[nn.Conv2d, nn.Module]] = [(model.stem_conv, model.stem_affine)]
    for unit in model.units:
        assert isinstance(unit, ResidualUnit)
        pairs += [(unit.conv1, unit.affine1), (unit.conv2, unit.affine2)]
    return pairs


def _expected_layer_types(model: DlibFaceResNet) -> list[type]:
    """The layer sequence the file must hold for this architecture, input side first."""
    kinds: list[type] = [ConvLayer, AffineLayer, ReluLayer, PoolLayer]
    for unit in model.units:
        assert isinstance(unit, ResidualUnit)
        shortcut = [PoolLayer] if isinstance(unit.shortcut, nn.AvgPool2d) else []
        conv_block = [ConvLayer, AffineLayer, ReluLayer, ConvLayer, AffineLayer]
        kinds += [*conv_block, *shortcut, AddPrevLayer, ReluLayer]
    return [*kinds, PoolLayer, FcLayer]


_EXPECTED_POOLS = [
    PoolLayer(kind="max", size=(3, 3), stride=(2, 2), padding=(0, 0)),
    *[PoolLayer(kind="avg", size=(2, 2), stride=(2, 2), padding=(0, 0))] * 4,
    PoolLayer(kind="avg", size=(0, 0), stride=(1, 1), padding=(0, 0)),  # global average
]


def _check_structure(model: DlibFaceResNet, network: DlibNetwork) -> None:
    found = [type(layer) for layer in network.layers]
    if found != _expected_layer_types(model):
        names = ", ".join(kind.__name__ for kind in found)
        raise DlibModelFormatError(f"not dlib's face ResNet; layers found: {names}")
    if network.input_size != (INPUT_SIZE, INPUT_SIZE):
        raise DlibModelFormatError(f"expected a {INPUT_SIZE}px input, found {network.input_size}")
    if network.pools != _EXPECTED_POOLS:
        raise DlibModelFormatError(f"unexpected pooling layers: {network.pools}")


def _load_conv(conv: nn.Conv2d, layer: ConvLayer) -> None:
    geometry = (conv.stride, conv.padding)
    if layer.weight.shape != tuple(conv.weight.shape) or (layer.stride, layer.padding) != geometry:
        raise DlibModelFormatError(
            f"conv mismatch: file has {layer.weight.shape} stride {layer.stride} "
            f"padding {layer.padding}, model has {tuple(conv.weight.shape)} {geometry}"
        )
    assert conv.bias is not None
    conv.weight.copy_(torch.from_numpy(layer.weight))
    conv.bias.copy_(torch.from_numpy(layer.bias))


def _load_affine(module: nn.Module, layer: AffineLayer) -> None:
    affine = _as_affine(module)
    if layer.gamma.shape != tuple(affine.scale.shape):
        raise DlibModelFormatError(f"affine of {layer.gamma.shape} for {affine.scale.shape}")
    affine.scale.copy_(torch.from_numpy(layer.gamma))
    affine.shift.copy_(torch.from_numpy(layer.beta))


@torch.no_grad()
def load_dlib_weights(model: DlibFaceResNet, network: DlibNetwork) -> None:
    """Copy a parsed dlib network's weights into `model`, checking every shape first."""
    _check_structure(model, network)
    fc = network.layers[-1]
    assert isinstance(fc, FcLayer)
    if fc.weight.shape != tuple(model.fc.weight.shape):
        raise DlibModelFormatError(f"fc of {fc.weight.shape}, expected {model.fc.weight.shape}")
    pairs = conv_affine_pairs(model)
    for (conv, affine), conv_layer, affine_layer in zip(
        pairs, network.convs, network.affines, strict=True
    ):
        _load_conv(conv, conv_layer)
        _load_affine(affine, affine_layer)
    model.fc.weight.copy_(torch.from_numpy(fc.weight))
    model.channel_means.copy_(torch.tensor(network.channel_means))


@torch.no_grad()
def _fold_affine(conv: nn.Conv2d, affine: Affine) -> None:
    """Make `conv` compute affine(conv(x)), in float64 so only the final cast rounds."""
    assert conv.bias is not None
    scale, shift = affine.scale.double(), affine.shift.double()
    weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
    bias = conv.bias.double() * scale + shift
    conv.weight.copy_(weight.to(conv.weight.dtype))
    conv.bias.copy_(bias.to(conv.bias.dtype))


def fold_for_inference(model: DlibFaceResNet) -> DlibFaceResNet:
    """An eval-mode, gradient-free copy with each affine folded into its conv, channels_last.

    The copy computes the same function with a convolution and a relu where
    the original has conv, affine and relu; `model` is left untouched.
    """
    folded = copy.deepcopy(model).eval().requires_grad_(False)
    _fold_affine(folded.stem_conv, _as_affine(folded.stem_affine))
    folded.stem_affine = nn.Identity()
    for unit in folded.units:
        assert isinstance(unit, ResidualUnit)
        _fold_affine(unit.conv1, _as_affine(unit.affine1))
        _fold_affine(unit.conv2, _as_affine(unit.affine2))
        unit.affine1, unit.affine2 = nn.Identity(), nn.Identity()
    return folded.to(memory_format=torch.channels_last)


def _as_affine(module: nn.Module) -> Affine:
    if not isinstance(module, Affine):
        raise TypeError("model is already folded")
    return module
