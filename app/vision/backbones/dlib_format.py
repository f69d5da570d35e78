"""Reading dlib's serialised face-recognition network into plain arrays.

dlib writes a network with its own `serialize` encoding: variable-length
integers, floats as mantissa and exponent, and tensors of raw float32. The
loss layer comes first, then one version integer per node from the output
down to the input, then the input layer, then each layer's own fields from
the input upwards. Tag and skip nodes write nothing of their own, so the
layers returned here are only the ones that carry fields; which tag an
`add_prev` adds is not stored, and the caller must know the network's shape.

The parser is strict: any unexpected name, version or value, a truncated
file, or bytes left over after the last field raise `DlibModelFormatError`,
since a half-understood file would silently give wrong embeddings.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]

# Node versions dlib writes: ordinary layer, tag/skip node, bottom layer.
_LAYER_NODE, _TAG_NODE, _BOTTOM_NODE = 2, 1, 3
_TENSOR_VERSION, _ALIAS_TENSOR_VERSION = 2, 1
# dlib encodes non-finite floats as these reserved exponents.
_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
_FC_NO_BIAS, _AFFINE_PER_CHANNEL = 1, 0


class DlibModelFormatError(ValueError):
    """The bytes are not a dlib network of the kind this parser understands."""


@dataclass(frozen=True)
class ConvLayer:
    """A `con_` layer: filters (out, in, kh, kw) and a bias per filter."""

    weight: FloatArray
    bias: FloatArray
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AffineLayer:
    """A per-channel `affine_` layer (batch norm folded in): y = gamma·x + beta."""

    gamma: FloatArray
    beta: FloatArray


@dataclass(frozen=True)
class PoolLayer:
    """A `max_pool_` or `avg_pool_` layer; a size of (0, 0) pools the whole plane."""

    kind: Literal["max", "avg"]
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def is_global(self) -> bool:
        """Whether the pool averages over the whole plane (dlib's `*_pool_everything`)."""
        return self.size == (0, 0)


@dataclass(frozen=True)
class ReluLayer:
    """A `relu_` layer (no fields)."""


@dataclass(frozen=True)
class AddPrevLayer:
    """An `add_prev_` layer: adds a tagged earlier output (which one is not stored)."""


@dataclass(frozen=True)
class FcLayer:
    """A bias-free `fc_` layer; `weight` is (outputs, inputs), as torch's Linear keeps it."""

    weight: FloatArray


DlibLayer = ConvLayer | AffineLayer | PoolLayer | ReluLayer | AddPrevLayer | FcLayer


@dataclass(frozen=True)
class DlibNetwork:
    """A whole dlib metric-learning network, its layers in input-to-output order."""

    channel_means: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: tuple[DlibLayer, ...]
    node_count: int
    loss_margin: float
    loss_distance_threshold: float

    @property
    def convs(self) -> list[ConvLayer]:
        """The convolutions, input side first."""
        return [layer for layer in self.layers if isinstance(layer, ConvLayer)]

    @property
    def affines(self) -> list[AffineLayer]:
        """The affine layers, input side first."""
        return [layer for layer in self.layers if isinstance(layer, AffineLayer)]

    @property
    def pools(self) -> list[PoolLayer]:
        """The pooling layers, input side first."""
        return [layer for layer in self.layers if isinstance(layer, PoolLayer)]


class ByteCursor:
    """Reads dlib's serialised primitives from a byte string, front to back."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.offset = 0

    def fail(self, message: str) -> DlibModelFormatError:
        """An error that says where in the file things went wrong."""
        return DlibModelFormatError(f"{message} (at byte {self.offset} of {len(self._data)})")

    def read_bytes(self, count: int) -> bytes:
        """The next `count` raw bytes."""
        end = self.offset + count
        if count < 0 or end > len(self._data):
            raise self.fail(f"file ends early: wanted {count} more bytes")
        chunk = self._data[self.offset : end]
        self.offset = end
        return chunk

    def read_int(self) -> int:
        """A varint: a control byte (low 4 bits: byte count, 0x80: negative), then magnitude LE."""
        control = self.read_bytes(1)[0]
        size = control & 0x0F
        if control & 0x70 or not 1 <= size <= 8:
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        magnitude = int.from_bytes(self.read_bytes(size), "little")
        return -magnitude if control & 0x80 else magnitude

    def read_string(self) -> str:
        """A length-prefixed byte string, decoded as ASCII (dlib's layer names are)."""
        length = self.read_int()
        if length < 0:
            raise self.fail(f"negative string length {length}")
        raw = self.read_bytes(length)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as error:
            raise self.fail(f"string is not ASCII: {raw[:32]!r}") from error

    def read_bool(self) -> bool:
        """A bool, which dlib writes as the ASCII character '0' or '1'."""
        char = self.read_bytes(1)
        if char not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {char!r}")
        return char == b"1"

    def read_float(self) -> float:
        """A float or double: int64 mantissa m and int16 exponent e, value m·2^e."""
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        if not -(2**63) <= mantissa < 2**63 or not -(2**15) <= exponent < 2**15:
            raise self.fail(f"float out of range: {mantissa}·2^{exponent}")
        return math.ldexp(mantissa, exponent)

    def read_shape(self) -> tuple[int, int, int, int]:
        """Four non-negative integers n, k, nr, nc."""
        n, k, nr, nc = (self.read_int() for _ in range(4))
        if min(n, k, nr, nc) < 0:
            raise self.fail(f"negative tensor dimension in {(n, k, nr, nc)}")
        return n, k, nr, nc

    def read_tensor(self) -> FloatArray:
        """A tensor: version 2, shape (n, k, nr, nc), then n·k·nr·nc little-endian float32."""
        self.expect_int(_TENSOR_VERSION, "tensor version")
        shape = self.read_shape()
        count = math.prod(shape)
        raw = self.read_bytes(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        """An alias tensor, which stores only a shape: version 1 and four integers."""
        self.expect_int(_ALIAS_TENSOR_VERSION, "alias tensor version")
        return self.read_shape()

    def expect_int(self, expected: int, what: str) -> None:
        """Read an integer and fail unless it is `expected`."""
        value = self.read_int()
        if value != expected:
            raise self.fail(f"{what}: expected {expected}, found {value}")

    def expect_string(self, expected: str) -> None:
        """Read a string and fail unless it is `expected` (dlib's type tags)."""
        value = self.read_string()
        if value != expected:
            raise self.fail(f"expected {expected!r}, found {value!r}")

    def expect_end(self) -> None:
        """Fail if any bytes are left: every field must have been understood."""
        left = len(self._data) - self.offset
        if left:
            raise self.fail(f"{left} unexpected bytes after the network")


def _read_pair(cursor: ByteCursor) -> tuple[int, int]:
    return cursor.read_int(), cursor.read_int()


def _read_conv(cursor: ByteCursor) -> ConvLayer:
    params = cursor.read_tensor().ravel()
    num_filters = cursor.read_int()
    kernel = _read_pair(cursor)
    stride = _read_pair(cursor)
    padding = _read_pair(cursor)
    filters_shape = cursor.read_alias_tensor()
    bias_shape = cursor.read_alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers: training-only
        cursor.read_float()
    weight_count = math.prod(filters_shape)
    expected_bias = (1, num_filters, 1, 1)
    if (
        filters_shape[0] != num_filters
        or filters_shape[2:] != kernel
        or bias_shape != expected_bias
    ):
        raise cursor.fail(f"conv shapes disagree: {filters_shape}, {bias_shape}, {num_filters}")
    if params.size != weight_count + num_filters:
        raise cursor.fail(f"conv params hold {params.size} values, expected {weight_count}+bias")
    weight = params[:weight_count].reshape(filters_shape)
    return ConvLayer(weight=weight, bias=params[weight_count:], stride=stride, padding=padding)


def _read_affine(cursor: ByteCursor) -> AffineLayer:
    params = cursor.read_tensor().ravel()
    gamma_shape = cursor.read_alias_tensor()
    beta_shape = cursor.read_alias_tensor()
    cursor.expect_int(_AFFINE_PER_CHANNEL, "affine mode (0 = per channel)")
    channels = gamma_shape[1]
    if gamma_shape != (1, channels, 1, 1) or beta_shape != gamma_shape:
        raise cursor.fail(f"affine shapes not per-channel: {gamma_shape}, {beta_shape}")
    if params.size != 2 * channels:
        raise cursor.fail(f"affine params hold {params.size} values, expected {2 * channels}")
    return AffineLayer(gamma=params[:channels], beta=params[channels:])


def _read_fc(cursor: ByteCursor) -> FcLayer:
    num_outputs = cursor.read_int()
    num_inputs = cursor.read_int()
    params = cursor.read_tensor()
    cursor.read_alias_tensor()  # weights view: implied by the two counts above
    cursor.read_alias_tensor()  # biases view: unused without a bias
    cursor.expect_int(_FC_NO_BIAS, "fc bias mode (1 = no bias)")
    for _ in range(4):
        cursor.read_float()
    if params.size != num_inputs * num_outputs:
        raise cursor.fail(
            f"fc params hold {params.size} values, expected {num_inputs}x{num_outputs}"
        )
    # dlib stores [inputs][outputs]; torch's Linear wants [outputs][inputs].
    weight = params.reshape(num_inputs, num_outputs).T.copy()
    return FcLayer(weight=weight)


def _pool_reader(kind: Literal["max", "avg"]) -> Callable[[ByteCursor], PoolLayer]:
    def read(cursor: ByteCursor) -> PoolLayer:
        size, stride, padding = _read_pair(cursor), _read_pair(cursor), _read_pair(cursor)
        return PoolLayer(kind=kind, size=size, stride=stride, padding=padding)

    return read


_LAYER_READERS: dict[str, Callable[[ByteCursor], DlibLayer]] = {
    "con_4": _read_conv,
    "affine_": _read_affine,
    "fc_2": _read_fc,
    "max_pool_2": _pool_reader("max"),
    "avg_pool_2": _pool_reader("avg"),
    "relu_": lambda _cursor: ReluLayer(),
    "add_prev_": lambda _cursor: AddPrevLayer(),
}


def _read_layer_node(cursor: ByteCursor) -> DlibLayer:
    """One layer's fields, then the node's training state (three bools, three tensors)."""
    name = cursor.read_string()
    reader = _LAYER_READERS.get(name)
    if reader is None:
        raise cursor.fail(f"unknown layer type {name!r}")
    layer = reader(cursor)
    for _ in range(3):  # setup called, gradient stale, output/gradient disabled
        cursor.read_bool()
    for _ in range(3):  # x_grad, cached output, params_grad (or grad_final): training state
        cursor.read_tensor()
    return layer


def _read_node_versions(cursor: ByteCursor) -> list[int]:
    """Version integers from the output node down, ending with the bottom layer's 3."""
    versions: list[int] = []
    while not versions or versions[-1] != _BOTTOM_NODE:
        version = cursor.read_int()
        if version not in (_LAYER_NODE, _TAG_NODE, _BOTTOM_NODE):
            raise cursor.fail(f"unknown network node version {version}")
        versions.append(version)
    return versions


def _read_input_layer(cursor: ByteCursor) -> tuple[tuple[float, float, float], tuple[int, int]]:
    cursor.expect_string("input_rgb_image_sized")
    red, green, blue = cursor.read_float(), cursor.read_float(), cursor.read_float()
    return (red, green, blue), _read_pair(cursor)


def parse_network(data: bytes) -> DlibNetwork:
    """Parse a serialised dlib `loss_metric` network (e.g. the face ResNet) from bytes."""
    cursor = ByteCursor(data)
    cursor.expect_int(1, "loss layer version")
    cursor.expect_string("loss_metric_2")
    margin, threshold = cursor.read_float(), cursor.read_float()
    versions = _read_node_versions(cursor)
    channel_means, input_size = _read_input_layer(cursor)
    layers: list[DlibLayer] = []
    for version in reversed(versions):
        if version == _TAG_NODE:
            continue
        layers.append(_read_layer_node(cursor))
        if version == _BOTTOM_NODE:
            cursor.expect_int(1, "sample expansion factor")
    cursor.expect_end()
    return DlibNetwork(
        channel_means=channel_means,
        input_size=input_size,
        layers=tuple(layers),
        node_count=len(versions),
        loss_margin=margin,
        loss_distance_threshold=threshold,
    )


def read_network_file(path: Path) -> DlibNetwork:
    """Parse a dlib network `.dat` file; see `parse_network`."""
    return parse_network(path.read_bytes())
