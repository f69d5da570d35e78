"""Making faces look as if a CCTV camera took them: small, soft, noisy, blocky and grey.

Evaluation probes are degraded with fixed settings (`cctv_degrade`), so that a
report's "CCTV" figures always mean the same damage; training chips get a
random mix of the same kinds of damage (`augment_chip`), so the network learns
to see through it. Both work on uint8 H×W×3 RGB arrays (a photo or a chip),
never touch global random state, and are deterministic given their `rng`.

The size of a face is what decides how much identity survives, so shrinking
is specified by the *face's* width after shrinking (e.g. 24–32 px, typical of
CCTV), not by a scale factor; callers pass the face's current width.
"""

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

Pixels = NDArray[np.uint8]


def shrink_and_restore(image: Pixels, *, scale: float) -> Pixels:
    """Downscale by `scale` (< 1, antialiased) and scale back up: the lost detail stays lost."""
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.fromarray(image)
    # BILINEAR in Pillow widens its support when downscaling, so it averages, not aliases.
    small = picture.resize(small_size, Image.Resampling.BILINEAR)
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


def rescale(image: Pixels, *, scale: float) -> Pixels:
    """`image` resized by `scale` (antialiased when shrinking, bicubic when enlarging)."""
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.BILINEAR if scale < 1 else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(image).resize(size, method), dtype=np.uint8)


def gaussian_blur(image: Pixels, *, sigma: float) -> Pixels:
    """Blur with a Gaussian of standard deviation `sigma` pixels (Pillow's GaussianBlur)."""
    if sigma <= 0:
        return image
    blurred = Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=sigma))
    return np.asarray(blurred, dtype=np.uint8)


def add_noise(image: Pixels, *, sigma: float, rng: np.random.Generator) -> Pixels:
    """Add Gaussian sensor noise of `sigma` grey levels (0..255 scale), clipped."""
    if sigma <= 0:
        return image
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, size=image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg_roundtrip(image: Pixels, *, quality: int) -> Pixels:
    """Encode as JPEG at `quality` (1–95) and decode again, keeping its block artefacts."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8)


def to_greyscale(image: Pixels) -> Pixels:
    """Luma (ITU-R 601) copied into three channels, so RGB backbones still accept it."""
    grey = np.asarray(Image.fromarray(image).convert("L"), dtype=np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def cctv_degrade(
    image: Pixels,
    *,
    face_width: float,
    rng: np.random.Generator,
    face_width_range: tuple[float, float] = (24.0, 32.0),
    blur_sigma: float = 1.0,
    jpeg_quality: int = 30,
    greyscale: bool = True,
) -> Pixels:
    """The evaluation probe's damage, in this order: shrink, restore, blur, JPEG, grey.

    `face_width` is the face's width in `image`'s pixels; the image is shrunk so
    that the face becomes a width drawn uniformly from `face_width_range`, then
    scaled back to its own size. Returns an array of `image`'s shape.
    """
    target = rng.uniform(*face_width_range)
    degraded = shrink_and_restore(image, scale=target / face_width)
    degraded = gaussian_blur(degraded, sigma=blur_sigma)
    degraded = jpeg_roundtrip(degraded, quality=jpeg_quality)
    return to_greyscale(degraded) if greyscale else degraded


@dataclass(frozen=True)
class AugmentationSettings:
    """How strongly training chips are perturbed; the defaults follow the CCTV use case."""

    flip_probability: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    cctv_probability: float = 0.5
    face_width_range: tuple[float, float] = (16.0, 40.0)
    blur_sigma_range: tuple[float, float] = (0.0, 1.5)
    noise_sigma_range: tuple[float, float] = (0.0, 8.0)
    jpeg_quality_range: tuple[int, int] = (20, 50)
    greyscale_probability: float = 0.5


def colour_jitter(
    image: Pixels, *, rng: np.random.Generator, settings: AugmentationSettings
) -> Pixels:
    """Random brightness, contrast and saturation factors in [1 − s, 1 + s]."""
    luma = np.array([0.299, 0.587, 0.114])
    pixels: NDArray[np.float64] = image.astype(np.float64)
    pixels = pixels * rng.uniform(1 - settings.brightness, 1 + settings.brightness)
    mean_grey = float((pixels @ luma).mean())
    contrast = rng.uniform(1 - settings.contrast, 1 + settings.contrast)
    pixels = (pixels - mean_grey) * contrast + mean_grey
    grey = (pixels @ luma)[:, :, None]
    saturation = rng.uniform(1 - settings.saturation, 1 + settings.saturation)
    pixels = (pixels - grey) * saturation + grey
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def random_cctv(
    image: Pixels, *, face_width: float, rng: np.random.Generator, settings: AugmentationSettings
) -> Pixels:
    """A random dose of CCTV damage: shrink, blur, noise, JPEG and, sometimes, grey.

    The blur, noise and JPEG blocks are applied at a random *working*
    resolution, where the face is between its shrunk width and its width in
    `image`, and the result is scaled back to `image`'s size. A real still is
    damaged at the camera's resolution, not the chip's: blur of 1 px and 8 px
    JPEG blocks on a 40 px face cover three times as much of an aligned 120 px
    face. Damage done at the chip's scale would be far milder than the probes'.
    """
    height, width = image.shape[:2]
    target = rng.uniform(*settings.face_width_range)
    working = rng.uniform(target, max(target, face_width))
    degraded = rescale(image, scale=working / face_width)
    degraded = shrink_and_restore(degraded, scale=target / working)
    degraded = gaussian_blur(degraded, sigma=rng.uniform(*settings.blur_sigma_range))
    degraded = add_noise(degraded, sigma=rng.uniform(*settings.noise_sigma_range), rng=rng)
    low, high = settings.jpeg_quality_range
    degraded = jpeg_roundtrip(degraded, quality=int(rng.integers(low, high, endpoint=True)))
    if rng.random() < settings.greyscale_probability:
        degraded = to_greyscale(degraded)
    if degraded.shape[:2] == (height, width):
        return degraded
    restored = Image.fromarray(degraded).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(restored, dtype=np.uint8)


def augment_chip(
    chip: Pixels,
    *,
    face_width: float,
    rng: np.random.Generator,
    settings: AugmentationSettings | None = None,
) -> Pixels:
    """A training view of `chip`: maybe mirrored, colour-jittered, maybe CCTV-degraded.

    Mirroring keeps identity and the aligned layout (the template is nearly
    symmetric); the CCTV branch uses `face_width`, the face's width in the chip.
    """
    settings = settings or AugmentationSettings()
    if rng.random() < settings.flip_probability:
        chip = np.ascontiguousarray(chip[:, ::-1])
    chip = colour_jitter(chip, rng=rng, settings=settings)
    if rng.random() < settings.cctv_probability:
        chip = random_cctv(chip, face_width=face_width, rng=rng, settings=settings)
    return chip
