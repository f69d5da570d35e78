"""Decoding: every format Pillow reads becomes upright RGB; bad bytes get typed errors."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.vision.errors import (
    AbsurdAspectRatio,
    EmptyImage,
    ImageTooLarge,
    TruncatedImage,
    UnreadableImage,
)
from app.vision.images import decode_image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient_rgb(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1))


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("JPEG", "RGB"),
        ("PNG", "RGB"),
        ("WEBP", "RGB"),
        ("BMP", "RGB"),
        ("GIF", "P"),
        ("JPEG", "L"),
        ("PNG", "L"),
        ("JPEG", "CMYK"),
        ("TIFF", "RGB"),
    ],
)
def test_common_formats_decode_to_rgb(fmt: str, mode: str) -> None:
    original = gradient_rgb().convert(mode)
    decoded = decode_image(encode(original, fmt))
    assert decoded.mode == "RGB"
    assert decoded.size == (64, 48)


def test_lossless_png_keeps_pixels() -> None:
    original = gradient_rgb()
    assert np.array_equal(np.asarray(decode_image(encode(original, "PNG"))), np.asarray(original))


def test_sixteen_bit_greyscale_png_is_scaled_by_its_range() -> None:
    levels = np.array([[0, 257, 32896, 65535]], dtype=np.uint16).repeat(4, 0)
    decoded = np.asarray(decode_image(encode(Image.fromarray(levels), "PNG")))
    assert decoded.shape == (4, 4, 3)
    assert decoded[0, :, 0].tolist() == [0, 1, 128, 255]


def test_alpha_is_flattened_onto_white() -> None:
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:, :4] = (255, 0, 0, 255)  # opaque red on the left, fully transparent on the right
    decoded = np.asarray(decode_image(encode(Image.fromarray(rgba), "PNG")))
    assert decoded[0, 0].tolist() == [255, 0, 0]
    assert decoded[0, 7].tolist() == [255, 255, 255]


def test_gif_gives_its_first_frame() -> None:
    red = Image.new("RGB", (16, 16), (255, 0, 0))
    blue = Image.new("RGB", (16, 16), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue])
    assert np.asarray(decode_image(data))[8, 8].tolist() == [255, 0, 0]


def test_exif_orientation_is_applied() -> None:
    # Stored landscape, red left half; orientation 6 says "rotate 90° clockwise to view".
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(encode(Image.fromarray(stored), "PNG", exif=exif))
    assert decoded.size == (20, 40)
    pixels = np.asarray(decoded)
    assert pixels[5, 10].tolist() == [255, 0, 0]  # the left half is now on top
    assert pixels[35, 10].tolist() == [0, 0, 255]


def test_zero_bytes_is_empty() -> None:
    with pytest.raises(EmptyImage):
        decode_image(b"")


def test_text_is_unreadable() -> None:
    with pytest.raises(UnreadableImage) as raised:
        decode_image(b"name,external_id\nAda,42\n")
    assert raised.value.code == "unreadable_image"


def test_truncated_jpeg_is_rejected() -> None:
    data = encode(gradient_rgb(400, 300), "JPEG", quality=95)
    with pytest.raises(TruncatedImage):
        decode_image(data[: len(data) // 2])


def test_truncated_png_is_rejected() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")
    with pytest.raises(TruncatedImage):
        decode_image(data[: len(data) // 2])


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`×`height`: a decompression bomb's shape."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    header = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(data)


def test_pixel_limit_is_checked_before_decoding() -> None:
    with pytest.raises(ImageTooLarge) as raised:
        decode_image(png_claiming_size(7_000, 7_000), max_pixels=40_000_000)
    assert "LINEUP_MAX_PIXELS" in str(raised.value)


def test_bomb_beyond_pillows_own_limit_is_too_large() -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(png_claiming_size(60_000, 60_000), max_pixels=10**10)


def test_absurd_aspect_ratio_is_rejected() -> None:
    with pytest.raises(AbsurdAspectRatio):
        decode_image(encode(Image.new("RGB", (4000, 10)), "PNG"))
