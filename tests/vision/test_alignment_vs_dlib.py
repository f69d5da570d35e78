"""MTCNN + Lineup's alignment against dlib's own 5-point chips, through the same backbone.

If the two chips of a face embed alike, Lineup's template and warp reproduce
the alignment the network was trained with.
"""

from pathlib import Path

import dlib
import face_recognition_models
import numpy as np

from app.vision.backbones.base import Backbone
from app.vision.embedder import FaceEmbedder
from app.vision.images import decode_image


def dlib_chip(photo: Path) -> np.ndarray | None:
    """dlib's 150×150 chip of the largest face it finds, or None."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    image = dlib.load_rgb_image(str(photo))
    faces = detector(image, 1)
    if not faces:
        return None
    face = max(faces, key=lambda rect: rect.area())
    return np.asarray(dlib.get_face_chip(image, predictor(image, face), size=150))


def lineup_chip(embedder: FaceEmbedder, photo: Path) -> np.ndarray:
    """Lineup's chip of the largest face MTCNN finds."""
    image = decode_image(photo.read_bytes())
    detections = embedder.detect(image)
    largest = max(detections, key=lambda detection: detection.box.area)
    return embedder.align(image, largest)


def test_mtcnn_chips_embed_like_dlibs_chips(
    embedder: FaceEmbedder, dlib_backbone: Backbone, faces_dir: Path
) -> None:
    photos = sorted((faces_dir / "lfw_mini").glob("*/*_000[12].jpg"))
    pairs = [(dlib_chip(photo), lineup_chip(embedder, photo)) for photo in photos]
    pairs = [(theirs, ours) for theirs, ours in pairs if theirs is not None]
    assert len(pairs) >= 20
    theirs = dlib_backbone.embed(np.stack([chip for chip, _ in pairs]))
    ours = dlib_backbone.embed(np.stack([chip for _, chip in pairs]))
    cosines = np.sum(theirs * ours, axis=1)
    assert cosines.min() >= 0.97, np.round(cosines, 3)
    assert cosines.mean() >= 0.99, np.round(cosines, 3)
