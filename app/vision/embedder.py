"""Photo in, every face out: detection, alignment and embedding in one place.

Every front door (the API, the CLI, training and evaluation) turns photos into
embeddings through `FaceEmbedder`, so they all see faces the same way. The
detector may search a large photo on a smaller working copy, but it reports
faces in the photo's own pixels, and each face is aligned from the photo
itself, so chips keep all the detail it has.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.vision.alignment import align_face
from app.vision.backbones.base import Backbone
from app.vision.detection import Detection, FaceDetector

DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class EmbeddedFace:
    """One face of a photo: where it is, its aligned chip and its unit-length embedding."""

    detection: Detection
    chip: NDArray[np.uint8]
    embedding: NDArray[np.float32]


def embed_in_batches(
    backbone: Backbone,
    chips: Sequence[NDArray[np.uint8]] | NDArray[np.uint8],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> NDArray[np.float32]:
    """`backbone.embed` over any number of chips, `batch_size` at a time; N×D.

    A list of chips is stacked one batch at a time; a slice of an array is a view.
    """
    batches = [
        backbone.embed(np.asarray(chips[start : start + batch_size]))
        for start in range(0, len(chips), batch_size)
    ]
    if not batches:
        return np.zeros((0, backbone.embedding_dim), dtype=np.float32)
    return np.concatenate(batches)


class FaceEmbedder:
    """Runs a `FaceDetector` and a `Backbone` together, batching the backbone's work."""

    def __init__(
        self,
        *,
        detector: FaceDetector,
        backbone: Backbone,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.detector = detector
        self.backbone = backbone
        self.batch_size = batch_size

    def detect(self, image: Image.Image) -> list[Detection]:
        """All faces in `image`, most confident first."""
        return self.detector.detect(image)

    def align(self, image: Image.Image, detection: Detection) -> NDArray[np.uint8]:
        """`detection`'s face as the backbone's chip."""
        return align_face(image, detection.landmarks, self.backbone.template)

    def embed_chips(self, chips: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """Embed aligned chips in batches of `batch_size`; N×D, L2-normalised."""
        return embed_in_batches(self.backbone, chips, batch_size=self.batch_size)

    def embed_faces(
        self, image: Image.Image, detections: Sequence[Detection]
    ) -> list[EmbeddedFace]:
        """The faces `detections` found in `image`, aligned from it and embedded, in order."""
        chips = [self.align(image, detection) for detection in detections]
        embeddings = self.embed_chips(chips)
        return [
            EmbeddedFace(detection=detection, chip=chip, embedding=embedding)
            for detection, chip, embedding in zip(detections, chips, embeddings, strict=True)
        ]

    def embed_image(self, image: Image.Image) -> list[EmbeddedFace]:
        """Every face in `image` with its chip and embedding, most confident first."""
        return self.embed_images([image])[0]

    def embed_images(self, images: Sequence[Image.Image]) -> list[list[EmbeddedFace]]:
        """Every face of every image; the backbone sees the faces of all images in batches."""
        detections = [self.detect(image) for image in images]
        chips = [
            self.align(image, detection)
            for image, found in zip(images, detections, strict=True)
            for detection in found
        ]
        embeddings = iter(self.embed_chips(chips))
        chip_iter = iter(chips)
        return [
            [
                EmbeddedFace(detection=detection, chip=next(chip_iter), embedding=next(embeddings))
                for detection in found
            ]
            for found in detections
        ]
