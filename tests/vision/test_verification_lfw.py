"""End-to-end verification on lfw_mini with LFW's own 2-fold protocol."""

from pathlib import Path

import numpy as np

from app.training.verification import kfold_accuracy, read_pairs
from app.vision.embedder import FaceEmbedder
from app.vision.images import decode_image


def central_face_embedding(embedder: FaceEmbedder, photo: Path) -> np.ndarray:
    image = decode_image(photo.read_bytes())
    faces = embedder.embed_image(image)
    centre = (image.width / 2, image.height / 2)
    nearest = min(faces, key=lambda f: np.hypot(*np.subtract(f.detection.box.center, centre)))
    return nearest.embedding


def test_lfw_mini_pairs_two_fold_accuracy(embedder: FaceEmbedder, faces_dir: Path) -> None:
    pairs = read_pairs(faces_dir / "lfw_mini" / "pairs.txt")
    assert len(pairs) == 60
    photos = sorted({photo for pair in pairs for photo in (pair.first, pair.second)})
    embeddings = {photo: central_face_embedding(embedder, photo) for photo in photos}
    similarities = np.array([embeddings[p.first] @ embeddings[p.second] for p in pairs])
    same = np.array([pair.same for pair in pairs])
    folds = np.array([pair.fold for pair in pairs])

    results = kfold_accuracy(similarities, same, folds)

    assert len(results) == 2
    accuracy = np.mean([result.accuracy for result in results])
    assert accuracy >= 0.95, results
