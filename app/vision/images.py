"""Decoding untrusted photo bytes into upright 8-bit RGB images, safely.

Probe photos come from anywhere (CCTV exports, phones, scanners), so decoding
accepts every format Pillow reads, applies the EXIF orientation a phone wrote,
and turns 16-bit, alpha, palette, greyscale and CMYK pictures into plain RGB.
It checks the pixel count from the header *before* decoding, so a
decompression bomb is refused without allocating its pixels.
"""

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.vision.errors import (
    AbsurdAspectRatio,
    EmptyImage,
    ImageTooLarge,
    TruncatedImage,
    UnreadableImage,
)

DEFAULT_MAX_PIXELS = 40_000_000
# Wider than any panorama worth searching; a 1×100,000 image is an attack or an accident.
MAX_ASPECT_RATIO = 20.0
_ALPHA_BACKGROUND = (255, 255, 255)
# Rows of a high-depth image converted at once (a few megabytes of float64).
_BAND_ROWS = 256


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode `data` into an upright RGB image, or raise a typed `ImageRejected`."""
    if not data:
        raise EmptyImage("the file is empty (zero bytes)")
    image = _open(data)
    _check_geometry(image.size, max_pixels=max_pixels)
    _load_pixels(image)
    # In place: otherwise Pillow returns a full copy even of an upright photo.
    ImageOps.exif_transpose(image, in_place=True)
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, flattening alpha onto white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _high_depth_to_l(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _flatten_alpha(image)
    return image.convert("RGB") if image.mode != "RGB" else image


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Lineup enforces its own pixel limit right after the header is read.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(f"the image has far too many pixels: {error}") from error
    except UnidentifiedImageError as error:
        raise UnreadableImage("the file is not an image format Lineup can read") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise UnreadableImage(f"the image header is corrupt: {error}") from error


def _check_geometry(size: tuple[int, int], *, max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise UnreadableImage(f"the image has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}×{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} (LINEUP_MAX_PIXELS)"
        )
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise AbsurdAspectRatio(
            f"the image is {width}×{height}; sides more than {MAX_ASPECT_RATIO:g}:1 "
            "apart cannot be a usable photo"
        )


def _load_pixels(image: Image.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise TruncatedImage(f"the image data is truncated or corrupt: {error}") from error


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """Scale 16-bit greyscale (or float 0–255) to 8 bits by its nominal range, not its content.

    A band of rows at a time: the float arithmetic over a whole 40-megapixel
    photo would hold over a gigabyte.
    """
    full_scale = 255.0 if image.mode == "F" else 65535.0
    grey = np.empty((image.height, image.width), dtype=np.uint8)
    for top in range(0, image.height, _BAND_ROWS):
        bottom = min(top + _BAND_ROWS, image.height)
        band = np.asarray(image.crop((0, top, image.width, bottom)), dtype=np.float64)
        grey[top:bottom] = np.clip(np.rint(band * (255.0 / full_scale)), 0, 255)
    return Image.fromarray(grey)


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """`image` composited onto white, pasted through its own alpha into one new RGB image."""
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, _ALPHA_BACKGROUND)
    flat.paste(rgba, mask=rgba)
    return flat
