"""dlib's serialize encoding, checked on hand-built bytes and on the real weights file."""

import math
from pathlib import Path

import numpy as np
import pytest

from app.vision.backbones.dlib_backbone import default_weights_path
from app.vision.backbones.dlib_format import (
    ByteCursor,
    DlibModelFormatError,
    DlibNetwork,
    parse_network,
    read_network_file,
)


@pytest.fixture(scope="module")
def weights_bytes() -> bytes:
    return default_weights_path().read_bytes()


@pytest.fixture(scope="module")
def network(weights_bytes: bytes) -> DlibNetwork:
    return parse_network(weights_bytes)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x01\x00", 0),
        (b"\x01\x07", 7),
        (b"\x81\x05", -5),
        (b"\x02\x34\x12", 0x1234),
        (b"\x82\x00\x01", -256),
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\x7f", 2**63 - 1),
    ],
)
def test_read_int_decodes_dlib_varints(raw: bytes, expected: int) -> None:
    cursor = ByteCursor(raw)
    assert cursor.read_int() == expected
    cursor.expect_end()


@pytest.mark.parametrize("raw", [b"\x00", b"\x09" + bytes(9), b"\x11\x00", b"\x02\x01"])
def test_read_int_rejects_bad_control_bytes_and_truncation(raw: bytes) -> None:
    with pytest.raises(DlibModelFormatError):
        ByteCursor(raw).read_int()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x01\x03\x81\x02", 0.75),  # 3·2^-2
        (b"\x81\x05\x01\x03", -40.0),  # -5·2^3
        (b"\x01\x00\x01\x00", 0.0),
        # The loss margin as dlib wrote it: 10737418·2^-28, float32's nearest to 0.04.
        (b"\x03\x0a\xd7\xa3\x81\x1c", float(np.float32(0.04))),
        (b"\x01\x00\x02\x00\x7d", math.inf),  # exponent 32000 marks +inf
        (b"\x01\x00\x02\x01\x7d", -math.inf),  # 32001 marks -inf
    ],
)
def test_read_float_is_mantissa_times_two_to_the_exponent(raw: bytes, expected: float) -> None:
    cursor = ByteCursor(raw)
    assert cursor.read_float() == expected
    cursor.expect_end()


def test_read_float_nan_exponent() -> None:
    assert math.isnan(ByteCursor(b"\x01\x00\x02\x02\x7d").read_float())


def test_read_string_and_bools() -> None:
    cursor = ByteCursor(b"\x01\x05relu_10")
    assert cursor.read_string() == "relu_"
    assert cursor.read_bool() is True
    assert cursor.read_bool() is False
    cursor.expect_end()


def test_read_bool_rejects_other_bytes() -> None:
    with pytest.raises(DlibModelFormatError, match="bool"):
        ByteCursor(b"\x01").read_bool()


def test_read_tensor_is_shape_then_little_endian_float32() -> None:
    header = b"\x01\x02" + b"\x01\x01\x01\x02\x01\x01\x01\x01"  # version 2, shape 1x2x1x1
    values = np.array([1.5, -2.0], dtype="<f4").tobytes()
    cursor = ByteCursor(header + values)
    tensor = cursor.read_tensor()
    cursor.expect_end()
    assert tensor.shape == (1, 2, 1, 1)
    assert tensor.dtype == np.float32
    np.testing.assert_array_equal(tensor.ravel(), [1.5, -2.0])


def test_read_alias_tensor_is_a_shape_only() -> None:
    cursor = ByteCursor(b"\x01\x01" + b"\x01\x01\x01\x20\x01\x01\x01\x01")
    assert cursor.read_alias_tensor() == (1, 32, 1, 1)
    cursor.expect_end()


def test_expect_end_reports_leftover_bytes() -> None:
    cursor = ByteCursor(b"\x01\x00\xff")
    cursor.read_int()
    with pytest.raises(DlibModelFormatError, match="1 unexpected bytes"):
        cursor.expect_end()


def test_real_file_parses_to_the_face_resnet(network: DlibNetwork) -> None:
    assert network.node_count == 130
    assert len(network.convs) == 29
    assert len(network.affines) == 29
    assert network.input_size == (150, 150)
    np.testing.assert_allclose(network.channel_means, (122.782, 117.001, 104.298), atol=1e-4)
    assert network.loss_margin == pytest.approx(0.04)
    assert network.loss_distance_threshold == pytest.approx(0.6)
    stem = network.convs[0]
    assert stem.weight.shape == (32, 3, 7, 7)
    assert (stem.stride, stem.padding) == ((2, 2), (0, 0))
    fc = network.layers[-1]
    assert fc.weight.shape == (128, 256)  # type: ignore[union-attr]
    parameters = sum(c.weight.size + c.bias.size for c in network.convs)
    parameters += sum(a.gamma.size + a.beta.size for a in network.affines)
    assert parameters + 128 * 256 == 5_614_592


def _parse_copy(tmp_path: Path, data: bytes) -> DlibNetwork:
    path = tmp_path / "modified.dat"
    path.write_bytes(data)
    return read_network_file(path)


@pytest.mark.parametrize("keep", [1, 100, 1_000_000, -1])
def test_truncated_file_is_a_format_error(tmp_path: Path, weights_bytes: bytes, keep: int) -> None:
    with pytest.raises(DlibModelFormatError, match="ends early"):
        _parse_copy(tmp_path, weights_bytes[:keep])


def test_trailing_garbage_is_a_format_error(tmp_path: Path, weights_bytes: bytes) -> None:
    with pytest.raises(DlibModelFormatError, match="unexpected bytes"):
        _parse_copy(tmp_path, weights_bytes + b"\x01\x00")


def test_wrong_loss_layer_is_a_format_error(tmp_path: Path, weights_bytes: bytes) -> None:
    data = weights_bytes.replace(b"loss_metric_2", b"loss_metric_3", 1)
    with pytest.raises(DlibModelFormatError, match="loss_metric_2"):
        _parse_copy(tmp_path, data)


def test_wrong_loss_version_is_a_format_error(tmp_path: Path, weights_bytes: bytes) -> None:
    with pytest.raises(DlibModelFormatError, match="loss layer version"):
        _parse_copy(tmp_path, b"\x01\x02" + weights_bytes[2:])


def test_unknown_layer_type_is_a_format_error(tmp_path: Path, weights_bytes: bytes) -> None:
    data = weights_bytes.replace(b"\x05relu_", b"\x05relu6", 1)
    with pytest.raises(DlibModelFormatError, match="unknown layer type 'relu6'"):
        _parse_copy(tmp_path, data)
