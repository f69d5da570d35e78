"""The embedder: every face of every photo, batched, unit-length, in detection order."""

from pathlib import Path

import numpy as np
from PIL import Image

from app.vision.embedder import FaceEmbedder
from app.vision.images import decode_image


def test_every_face_gets_a_chip_and_a_unit_embedding(
    embedder: FaceEmbedder, faces_dir: Path
) -> None:
    image = decode_image((faces_dir / "multi_face" / "couple.jpg").read_bytes())
    faces = embedder.embed_image(image)
    assert len(faces) == 2
    for face in faces:
        assert face.chip.shape == (150, 150, 3) and face.chip.dtype == np.uint8
        assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
        assert np.isclose(np.linalg.norm(face.embedding), 1.0, atol=1e-5)
    assert faces[0].embedding @ faces[1].embedding < 0.9  # two different people


def test_batching_across_photos_changes_nothing(embedder: FaceEmbedder, faces_dir: Path) -> None:
    photos = [
        faces_dir / "multi_face" / "two_people.jpg",
        faces_dir / "lfw_mini" / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg",
    ]
    images = [decode_image(photo.read_bytes()) for photo in photos]
    together = embedder.embed_images([*images, Image.new("RGB", (64, 64))])
    alone = [embedder.embed_image(image) for image in images]
    assert [len(faces) for faces in together] == [2, 1, 0]
    for batched, single in zip(together, alone, strict=False):
        for a, b in zip(batched, single, strict=True):
            assert np.allclose(a.embedding, b.embedding, atol=1e-5)
            assert np.array_equal(a.chip, b.chip)


def test_no_chips_embed_to_an_empty_matrix(embedder: FaceEmbedder) -> None:
    assert embedder.embed_chips([]).shape == (0, 128)
