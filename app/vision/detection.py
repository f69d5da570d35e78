"""Finding faces and their five landmarks with MTCNN.

MTCNN's weights ship inside the facenet-pytorch wheel, so detection works with
no network. Its raw output mixes `None` with arrays; here every image gives a
plain list of typed `Detection`s, empty when there is no face.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from app.vision.mtcnn import MtcnnCascade, MtcnnFaces
from app.vision.working_size import DEFAULT_DETECTION_MAX_SIDE, WorkingCopy

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Box:
    """A face rectangle in image pixels: (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)


@dataclass(frozen=True)
class Detection:
    """One face: where it is, how sure the detector is, and its five landmarks.

    `landmarks` is a (5, 2) array of (x, y) image pixels in `LANDMARK_NAMES` order.
    """

    box: Box
    probability: float
    landmarks: NDArray[np.float64]


class FaceDetector(Protocol):
    """Anything that finds faces with five landmarks in an RGB image."""

    def detect(self, image: Image.Image) -> list[Detection]:
        """All faces in `image`, most confident first; empty when there are none."""
        ...


class MtcnnDetector:
    """MTCNN's P-, R- and O-Net cascade (`MtcnnCascade`), returning typed detections.

    The cascade runs facenet-pytorch's pretrained nets with faster glue and
    finds the same faces as facenet-pytorch's `MTCNN.detect`.

    MTCNN's first stage only looks at windows that lie wholly inside the
    image, so a face cut off by the edge (a doorbell still, a group selfie)
    is easily missed. The image is therefore framed in a neutral grey border
    of `edge_padding` times its longer side before detection; boxes and
    landmarks are reported in the original image's pixels and may reach past
    its edge.

    A photo whose longer side exceeds `max_side` is searched on a copy shrunk
    to that side (see `WorkingCopy`), so that detection's memory and time stay
    bounded whatever the photo's size; boxes and landmarks are still reported
    in the photo's own pixels, so the face is aligned from the full photo.
    `min_face_size` counts working-copy pixels: in a photo shrunk `s` times,
    faces smaller than `min_face_size · s` photo pixels are not looked for
    (with the defaults 20 and 1600: 24 px in a 1920 × 1080 still, 75 px in a
    6000 × 6000 photo). `None` searches every photo at its own size.
    """

    def __init__(
        self,
        *,
        device: torch.device,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        edge_padding: float = 0.25,
        max_side: int | None = DEFAULT_DETECTION_MAX_SIDE,
    ) -> None:
        self.device = device
        self.edge_padding = edge_padding
        self.max_side = max_side
        self._cascade = MtcnnCascade(
            device=device, min_face_size=min_face_size, thresholds=thresholds
        )

    def detect(self, image: Image.Image) -> list[Detection]:
        """All faces in `image` (RGB), most confident first, in `image`'s pixels."""
        working = WorkingCopy.of(image, max_side=self.max_side)
        border = round(self.edge_padding * max(working.image.size))
        faces = self._cascade.detect(working.image, frame=border)
        return _to_detections(faces, offset=border, working=working)


def _to_detections(faces: MtcnnFaces, *, offset: float, working: WorkingCopy) -> list[Detection]:
    """`faces` found in `working`'s copy framed by `offset` pixels, in the full photo's pixels."""
    corners = working.to_full(faces.boxes.astype(np.float64).reshape(-1, 2, 2) - offset)
    points = working.to_full(faces.landmarks.astype(np.float64) - offset)
    detections = [
        Detection(
            box=Box(*(float(v) for v in box.ravel())),
            probability=float(probability),
            landmarks=landmarks,
        )
        for box, probability, landmarks in zip(corners, faces.probabilities, points, strict=True)
    ]
    return sorted(detections, key=lambda d: d.probability, reverse=True)
