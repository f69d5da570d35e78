"""The fast MTCNN cascade against facenet-pytorch's `MTCNN.detect`, on real photos.

Both run the same pretrained nets on the same pixels (the cascade's area
resizes are exact integer sums, facenet-pytorch's float32 sums), with the
same box arithmetic and tie-breaking, so on the shared photos boxes and
landmarks agree to 1.2e-4 px and probabilities to 4e-7. The tolerances, 1 px
and 1e-3, leave room for float rounding on other hardware to move a
truncated crop corner by one pixel, and still catch any real change: the
cheaper resamplers tried first moved boxes by up to 15 to 28 px. A face
gained or lost fails outright.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import batched_nms_numpy, imresample
from PIL import Image, ImageOps
from torch.nn.functional import interpolate

from app.vision.mtcnn import (
    FRAME_GREY,
    MtcnnCascade,
    MtcnnFaces,
    PyramidScan,
    Span,
    _level_scan,
    _level_scans,
    _packed_scan,
    _plan_level,
    area_bins,
    crop_boxes,
    integral_image,
    level_bands,
    nms_min,
    pyramid_plan,
    pyramid_scales,
    scan_pixels,
)

CPU = torch.device("cpu")
BOX_TOLERANCE_PX = 1.0
PROBABILITY_TOLERANCE = 1e-3
# Photos with a faint second or third face scoring near a threshold: cheaper
# resamplers (bilinear pyramid, roi_align crops) gained or lost a face on each.
BORDERLINE_PHOTOS = (
    "Jeong_Se-hyun/Jeong_Se-hyun_0005.jpg",
    "Justin_Timberlake/Justin_Timberlake_0002.jpg",
    "Mahathir_Mohamad/Mahathir_Mohamad_0002.jpg",
    "Queen_Elizabeth_II/Queen_Elizabeth_II_0003.jpg",
)
GREY = (128, 128, 128)
SHIFT = torch.tensor(-127.5 * 0.0078125)  # the nets' input normalisation's offset


@pytest.fixture(scope="module")
def cascade() -> MtcnnCascade:
    return MtcnnCascade(device=CPU)


@pytest.fixture(scope="module")
def reference() -> MTCNN:
    return MTCNN(keep_all=True, select_largest=False, device=CPU).eval()


def lfw_subset(faces_dir: Path) -> list[Path]:
    """One photo per person, plus the borderline ones."""
    people = sorted(path for path in (faces_dir / "lfw_mini").iterdir() if path.is_dir())
    firsts = [sorted(person.glob("*.jpg"))[0] for person in people]
    return firsts + [faces_dir / "lfw_mini" / name for name in BORDERLINE_PHOTOS]


def framed(image: Image.Image) -> Image.Image:
    """`image` in the grey border `MtcnnDetector` adds (a quarter of its longer side)."""
    return ImageOps.expand(image, border=round(0.25 * max(image.size)), fill=GREY)


def assert_agrees(faces: MtcnnFaces, reference: MTCNN, image: Image.Image) -> None:
    """Same faces as facenet-pytorch's `MTCNN.detect`, each within the tolerances."""
    boxes, probabilities, landmarks = reference.detect(image, landmarks=True)
    if boxes is None:
        assert len(faces) == 0
        return
    assert len(faces) == len(boxes)
    for box, probability, points in zip(boxes, probabilities, landmarks, strict=True):
        nearest = int(np.abs(faces.boxes - box).max(axis=1).argmin())
        assert np.abs(faces.boxes[nearest] - box).max() <= BOX_TOLERANCE_PX
        assert np.abs(faces.landmarks[nearest] - points).max() <= BOX_TOLERANCE_PX
        assert abs(faces.probabilities[nearest] - probability) <= PROBABILITY_TOLERANCE


def test_lfw_photos_agree_with_facenet_pytorch(
    cascade: MtcnnCascade, reference: MTCNN, faces_dir: Path
) -> None:
    for photo in lfw_subset(faces_dir):
        image = Image.open(photo).convert("RGB")
        for variant in (image, framed(image)):
            assert_agrees(cascade.detect(variant), reference, variant)


@pytest.mark.parametrize("name", ["couple.jpg", "two_people.jpg", "selfie-many-people.jpg"])
def test_framed_group_photos_agree_with_facenet_pytorch(
    cascade: MtcnnCascade, reference: MTCNN, faces_dir: Path, name: str
) -> None:
    image = framed(Image.open(faces_dir / "multi_face" / name).convert("RGB"))
    assert_agrees(cascade.detect(image), reference, image)


def test_faces_come_most_confident_first(cascade: MtcnnCascade, faces_dir: Path) -> None:
    image = framed(Image.open(faces_dir / "multi_face" / "selfie-many-people.jpg"))
    faces = cascade.detect(image)
    assert len(faces) == 7
    assert list(faces.probabilities) == sorted(faces.probabilities, reverse=True)
    assert faces.boxes.shape == (7, 4) and faces.landmarks.shape == (7, 5, 2)


def test_images_without_a_face_give_no_faces(cascade: MtcnnCascade) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for image in (Image.fromarray(noise), Image.new("RGB", (200, 200), (40, 120, 200))):
        faces = cascade.detect(image)
        assert len(faces) == 0
        assert faces.boxes.shape == (0, 4) and faces.landmarks.shape == (0, 5, 2)


def noise(width: int, height: int) -> Image.Image:
    """An RGB image of random pixels: no face, and no plain frame either."""
    pixels = np.random.default_rng(width * height).integers(0, 256, (height, width, 3))
    return Image.fromarray(pixels.astype(np.uint8))


@pytest.mark.parametrize("size", [(10, 10), (1, 1), (19, 40), (300, 12)])
def test_images_too_small_for_a_face_give_no_faces(
    cascade: MtcnnCascade, size: tuple[int, int]
) -> None:
    """Under 20 px (`min_face_size`) there is no pyramid; facenet-pytorch raises here."""
    assert len(cascade.detect(noise(*size))) == 0


@pytest.mark.parametrize("size", [(20, 20), (21, 300), (400, 24)])
def test_images_just_large_enough_agree_with_facenet_pytorch(
    cascade: MtcnnCascade, reference: MTCNN, size: tuple[int, int]
) -> None:
    image = noise(*size)
    assert_agrees(cascade.detect(image), reference, image)


def test_greyscale_images_are_converted(cascade: MtcnnCascade, faces_dir: Path) -> None:
    photo = Image.open(faces_dir / "lfw_mini" / BORDERLINE_PHOTOS[0])
    grey = photo.convert("L")
    assert len(cascade.detect(grey)) == len(cascade.detect(grey.convert("RGB"))) >= 1


def test_pyramid_levels_are_facenet_pytorchs_area_resize() -> None:
    """Oracle: each level equals `interpolate(mode="area")` of the whole image, normalised."""
    pixels = torch.randint(0, 256, (37, 53, 3), dtype=torch.uint8)
    table = integral_image(pixels)
    image = pixels.permute(2, 0, 1)[None].float()
    for size in [(23, 33), (12, 12), (37, 53), (16, 40)]:
        rows, cols = area_bins(37, size[0], (0, size[0])), area_bins(53, size[1], (0, size[1]))
        weight = 0.0078125 / np.outer(rows[0] - rows[1], cols[0] - cols[1])
        scan = PyramidScan(
            weight=torch.from_numpy(weight[..., None].astype(np.float32)),
            rows=torch.from_numpy(rows.ravel()),
            cols=torch.from_numpy(cols.ravel()),
        )
        built = scan_pixels(table, scan, shift=SHIFT)
        expected = (imresample(image, size) - 127.5) * 0.0078125
        torch.testing.assert_close(built, expected, rtol=0, atol=1e-5)


def test_small_levels_packed_into_one_pass_score_as_when_scanned_alone(
    cascade: MtcnnCascade, faces_dir: Path
) -> None:
    """Oracle: P-Net over levels side by side, masked at their edges, equals P-Net on each."""
    image = Image.open(faces_dir / "lfw_mini" / BORDERLINE_PHOTOS[1]).convert("RGB")
    table = integral_image(torch.from_numpy(np.array(image)))
    scales = pyramid_scales(250, 250, min_face_size=20, factor=0.709)
    levels = [_plan_level(250, 250, scale, Span(0, 250, 0, 250)) for scale in scales]
    small = [level for level in levels[2:] if level is not None]
    with torch.inference_mode():
        packed = cascade._scan(table, _packed_scan(small, 250, CPU))
        alone = torch.cat([cascade._scan(table, _level_scan(level, CPU)) for level in small])
    assert packed.shape == alone.shape
    torch.testing.assert_close(packed, alone, rtol=0, atol=1e-5)


@pytest.mark.parametrize("side", [250, 251])
def test_a_level_scanned_in_bands_scores_as_when_scanned_whole(
    cascade: MtcnnCascade, faces_dir: Path, side: int
) -> None:
    """Oracle: P-Net band after band equals P-Net over the whole level, whose bottom edge
    is a partial pool cell when its side is odd."""
    photo = Image.open(faces_dir / "lfw_mini" / BORDERLINE_PHOTOS[0]).convert("RGB")
    image = photo.resize((side, side), Image.Resampling.BICUBIC)
    table = integral_image(torch.from_numpy(np.array(image)))
    level = _plan_level(side, side, 1.0, Span(0, side, 0, side))
    assert level is not None
    bands = level_bands(level.rows.shape[1], level.cols.shape[1], pixels=40 * side)
    assert len(bands) > 3 and bands[-1].stop == level.rows.shape[1]
    with torch.inference_mode():
        whole = cascade._scan(table, _level_scan(level, CPU))
        banded = [
            cascade._scan(table, _level_scan(level._replace(rows=level.rows[:, band]), CPU))
            for band in bands
        ]
    torch.testing.assert_close(torch.cat(banded), whole, rtol=0, atol=1e-5)


def test_large_levels_are_planned_in_bands_of_bounded_size() -> None:
    level = _plan_level(2880, 2880, 0.6, Span(480, 2400, 480, 2400))
    assert level is not None
    scans = _level_scans(level, CPU)
    assert len(scans) > 10
    assert max(scan.weight.shape[0] * scan.weight.shape[1] for scan in scans) < 2 * 256 * 256


def test_a_frame_added_in_the_table_is_the_framed_images_table() -> None:
    pixels = torch.randint(0, 256, (37, 53, 3), dtype=torch.uint8)
    framed = torch.tensor(FRAME_GREY, dtype=torch.uint8).expand(37 + 22, 53 + 22, 3).clone()
    framed[11:-11, 11:-11] = pixels
    assert torch.equal(integral_image(pixels, frame=11), integral_image(framed))


@pytest.mark.parametrize("name", ["couple.jpg", "selfie-many-people.jpg"])
def test_framing_in_the_cascade_finds_what_framing_the_photo_finds(
    cascade: MtcnnCascade, faces_dir: Path, name: str
) -> None:
    photo = Image.open(faces_dir / "multi_face" / name).convert("RGB")
    border = round(0.25 * max(photo.size))
    in_table, in_photo = cascade.detect(photo, frame=border), cascade.detect(framed(photo))
    assert len(in_table) == len(in_photo) >= 2
    np.testing.assert_array_equal(in_table.boxes, in_photo.boxes)
    np.testing.assert_array_equal(in_table.landmarks, in_photo.landmarks)


def test_crops_are_facenet_pytorchs_clipped_area_resize() -> None:
    """Oracle: facenet-pytorch's per-box `pad`, slice and area resize, box by box."""
    pixels = torch.randint(0, 256, (40, 50, 3), dtype=torch.uint8)
    image = pixels.permute(2, 0, 1)[None].float()
    boxes = np.array(
        [[3.7, 2.2, 20.9, 19.5, 0.9], [-6.0, -3.5, 12.0, 14.5, 0.8], [30.2, 25.0, 61.0, 55.9, 0.7]],
        np.float32,
    )
    crops, kept = crop_boxes(integral_image(pixels), boxes, size=24, shift=SHIFT)
    np.testing.assert_array_equal(kept, boxes)
    for crop, box in zip(crops, np.trunc(boxes).astype(int).tolist(), strict=True):
        x, y = max(box[0], 1), max(box[1], 1)
        right, bottom = min(box[2], 50), min(box[3], 40)
        window = image[:, :, y - 1 : bottom, x - 1 : right]
        expected = (interpolate(window, size=(24, 24), mode="area") - 127.5) * 0.0078125
        torch.testing.assert_close(crop[None], expected, rtol=0, atol=1e-5)


def test_boxes_wholly_outside_the_image_are_dropped() -> None:
    table = integral_image(torch.full((30, 30, 3), 128, dtype=torch.uint8))
    boxes = np.array([[40.0, 5.0, 60.0, 25.0, 0.9], [5.0, 5.0, 25.0, 25.0, 0.8]], np.float32)
    crops, kept = crop_boxes(table, boxes, size=24, shift=SHIFT)
    assert crops.shape == (1, 3, 24, 24)
    np.testing.assert_array_equal(kept, boxes[1:])


def test_min_nms_keeps_what_facenet_pytorch_keeps() -> None:
    """Oracle: facenet-pytorch's NumPy 'Min' NMS on random overlapping boxes, tied scores too."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        corners = rng.random((12, 2), np.float32) * 60
        sides = 10 + rng.random((12, 2), np.float32) * 30
        scores = rng.choice(np.array([0.8, 0.95, 1.0], np.float32), 12)[:, None]
        boxes = np.concatenate((corners, corners + sides, scores), axis=1)
        as_tensors = (torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]))
        expected = batched_nms_numpy(*as_tensors, torch.zeros(12), 0.7, "Min")
        assert nms_min(boxes, 0.7).tolist() == expected.tolist()


def test_plain_frames_are_skipped_only_where_no_window_reaches_the_photo() -> None:
    """A 250 px photo in a 62 px frame: the largest level scans less than all of itself."""
    plan = pyramid_plan(
        374, 374, Span(62, 312, 62, 312), min_face_size=20, factor=0.709, device=CPU
    )
    whole = pyramid_plan(374, 374, Span(0, 374, 0, 374), min_face_size=20, factor=0.709, device=CPU)
    assert len(plan.starts) == len(whole.starts) == 9
    assert plan.scans[0].weight.shape[:2] == (172, 172)
    assert whole.scans[0].weight.shape[:2] == (225, 225)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_finds_what_the_cpu_finds(cascade: MtcnnCascade, faces_dir: Path) -> None:
    image = framed(Image.open(faces_dir / "multi_face" / "selfie-many-people.jpg"))
    on_gpu = MtcnnCascade(device=torch.device("cuda")).detect(image)
    on_cpu = cascade.detect(image)
    assert len(on_gpu) == len(on_cpu)
    np.testing.assert_allclose(on_gpu.boxes, on_cpu.boxes, atol=BOX_TOLERANCE_PX)
