"""MTCNN on real photos: every face a person would count, typed, empty when there are none."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.vision.detection import Detection, MtcnnDetector
from app.vision.images import decode_image

# Counted by eye, cut-off faces at the edges included.
FACES_IN_PHOTO = {"couple.jpg": 2, "two_people.jpg": 2, "selfie-many-people.jpg": 7}


@pytest.mark.parametrize(("name", "count"), sorted(FACES_IN_PHOTO.items()))
def test_multi_face_photos_give_every_face(
    detector: MtcnnDetector, faces_dir: Path, name: str, count: int
) -> None:
    detections = detector.detect(decode_image((faces_dir / "multi_face" / name).read_bytes()))
    assert len(detections) == count


def test_each_lfw_photo_gives_its_central_face(detector: MtcnnDetector, faces_dir: Path) -> None:
    photos = sorted((faces_dir / "lfw_mini").glob("*/*.jpg"))
    assert len(photos) == 60
    for photo in photos:
        detections = detector.detect(decode_image(photo.read_bytes()))
        central = min(detections, key=lambda d: np.hypot(*np.subtract(d.box.center, (125, 125))))
        assert np.hypot(*np.subtract(central.box.center, (125, 125))) < 30, photo.name
        assert central.probability >= 0.9, photo.name


def test_detections_are_typed_and_ordered(detector: MtcnnDetector, faces_dir: Path) -> None:
    photo = faces_dir / "multi_face" / "selfie-many-people.jpg"
    detections = detector.detect(decode_image(photo.read_bytes()))
    probabilities = [d.probability for d in detections]
    assert probabilities == sorted(probabilities, reverse=True)
    for detection in detections:
        assert isinstance(detection, Detection)
        assert detection.landmarks.shape == (5, 2)
        assert 0.0 < detection.probability <= 1.0
        left_eye, right_eye = detection.landmarks[0], detection.landmarks[1]
        assert left_eye[0] < right_eye[0]  # the subject's left eye is on the image's left


def test_an_image_without_a_face_gives_an_empty_list(detector: MtcnnDetector) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert detector.detect(Image.fromarray(noise)) == []
    assert detector.detect(Image.new("RGB", (200, 200), (40, 120, 200))) == []


def test_greyscale_photos_are_detected(detector: MtcnnDetector, faces_dir: Path) -> None:
    photo = next(iter(sorted((faces_dir / "orl").glob("s1/*.pgm"))))
    detections = detector.detect(decode_image(photo.read_bytes()))
    assert len(detections) == 1
