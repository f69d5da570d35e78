"""Face vectors searched as *subjects*: a subject's score is its best-matching face.

The vector index knows only face ids; this layer keeps the face → subject map
beside it and widens the face search until it has k distinct subjects.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.index import SearchHit, VectorIndex

# Most subjects have a handful of photos; start by fetching this many faces per
# wanted subject and widen only when one subject's faces crowd out the rest.
_FACES_PER_SUBJECT_GUESS = 4


@dataclass(frozen=True)
class SubjectHit:
    """A gallery subject ranked for a probe face, scored by its best face."""

    subject_id: int
    similarity: float
    face_id: int


class GalleryIndex:
    """A `VectorIndex` of face embeddings plus which subject each face belongs to.

    Searches may run concurrently; `add` and `remove` must be serialised by
    the caller (the gallery's write lock), which also keeps the map and the
    index in step.
    """

    def __init__(self, index: VectorIndex, face_subjects: dict[int, int]) -> None:
        self.index = index
        self._face_subjects = dict(face_subjects)
        self.unsaved_changes = False

    def __len__(self) -> int:
        return len(self.index)

    @property
    def subject_count(self) -> int:
        return len(set(self._face_subjects.values()))

    def add(self, *, face_id: int, subject_id: int, embedding: NDArray[np.float32]) -> None:
        self.index.add(np.array([face_id], dtype=np.int64), embedding.reshape(1, -1))
        self._face_subjects[face_id] = subject_id
        self.unsaved_changes = True

    def remove(self, face_ids: list[int]) -> None:
        if face_ids:
            self.index.remove(np.asarray(face_ids, dtype=np.int64))
        for face_id in face_ids:
            self._face_subjects.pop(face_id, None)
        self.unsaved_changes = self.unsaved_changes or bool(face_ids)

    def best_subjects(self, embedding: NDArray[np.float32], *, k: int) -> list[SubjectHit]:
        """The `k` subjects most similar to `embedding`, best first (fewer if the gallery is)."""
        total = len(self.index)
        wanted = min(total, k * _FACES_PER_SUBJECT_GUESS)
        while True:
            hits = self.index.search(embedding.reshape(1, -1), wanted)[0]
            ranked = self._best_per_subject(hits)
            if len(ranked) >= k or wanted >= total:
                return ranked[:k]
            wanted = min(total, wanted * 4)

    def _best_per_subject(self, hits: list[SearchHit]) -> list[SubjectHit]:
        best: dict[int, SubjectHit] = {}
        for hit in hits:  # hits arrive best first, so the first face of a subject wins
            subject_id = self._face_subjects.get(hit.id)
            if subject_id is not None and subject_id not in best:
                best[subject_id] = SubjectHit(subject_id, hit.similarity, hit.id)
        return list(best.values())
