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
from PIL import Image, ImageOps

from app.vision.mtcnn import MtcnnCascade, MtcnnFaces

_BORDER_GREY = (128, 128, 128)
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
    """

    def __init__(
        self,
        *,
        device: torch.device,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        edge_padding: float = 0.25,
    ) -> None:
        self.device = device
        self.edge_padding = edge_padding
        self._cascade = MtcnnCascade(
            device=device, min_face_size=min_face_size, thresholds=thresholds
        )

    def detect(self, image: Image.Image) -> list[Detection]:
        """All faces in `image` (RGB), most confident first."""
        border = round(self.edge_padding * max(image.size))
        framed = ImageOps.expand(image, border=border, fill=_BORDER_GREY) if border else image
        return _to_detections(self._cascade.detect(framed), offset=border)


def _to_detections(faces: MtcnnFaces, *, offset: float) -> list[Detection]:
    detections = [
        Detection(
            box=Box(*(float(v) - offset for v in box)),
            probability=float(probability),
            landmarks=np.asarray(landmarks, dtype=np.float64) - offset,
        )
        for box, probability, landmarks in zip(
            faces.boxes, faces.probabilities, faces.landmarks, strict=True
        )
    ]
    return sorted(detections, key=lambda d: d.probability, reverse=True)
