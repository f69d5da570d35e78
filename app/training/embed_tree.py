"""Embedding the subject face of every photo in a labelled tree, noting what was skipped."""

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from app.training.face_tree import LabelledPhoto, subject_face
from app.vision.embedder import FaceEmbedder
from app.vision.errors import ImageRejected
from app.vision.images import decode_image

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class TreeEmbeddings:
    """One embedding per usable photo, its identity label, and why the rest were skipped."""

    embeddings: NDArray[np.float32]
    identities: list[str]
    skipped: Counter[str] = field(default_factory=Counter)

    def labels(self) -> NDArray[np.int64]:
        names = {name: number for number, name in enumerate(sorted(set(self.identities)))}
        return np.array([names[name] for name in self.identities], dtype=np.int64)


def embed_tree(
    embedder: FaceEmbedder,
    photos: Iterable[LabelledPhoto],
    *,
    progress: Progress | None = None,
) -> TreeEmbeddings:
    """Embed each photo's subject face; unreadable and faceless photos are counted, not fatal."""
    photos = list(photos)
    chips, identities, skipped = [], [], Counter[str]()
    for done, photo in enumerate(photos, start=1):
        try:
            image = decode_image(photo.path.read_bytes())
        except ImageRejected as error:
            skipped[error.code] += 1
        else:
            face = subject_face(embedder.detect(image), width=image.width, height=image.height)
            if face is None:
                skipped["no_face"] += 1
            else:
                chips.append(embedder.align(image, face))
                identities.append(photo.identity)
        if progress is not None:
            progress(done, len(photos))
    if skipped:
        log.info("skipped %d of %d photos: %s", sum(skipped.values()), len(photos), dict(skipped))
    return TreeEmbeddings(embedder.embed_chips(chips), identities, skipped)
