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

    Searches may run concurrently; `add_many` and `remove` must be serialised
    by the caller (the process's `IndexFollower`), which also keeps the map
    and the index in step. A face is added to the vector index before the map
    and leaves it first, so a search never meets a face of unknown subject it
    would have to guess about: such a hit is skipped.
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

    def __contains__(self, face_id: object) -> bool:
        return face_id in self.index

    def add_many(
        self,
        *,
        face_ids: list[int],
        subject_ids: list[int],
        embeddings: list[NDArray[np.float32]],
    ) -> None:
        """Add faces, one embedding each, in one index call (none: nothing happens)."""
        if not face_ids:
            return
        self.index.add(np.asarray(face_ids, dtype=np.int64), np.stack(embeddings))
        self._face_subjects.update(zip(face_ids, subject_ids, strict=True))
        self.unsaved_changes = True

    def know_subjects(self, face_subjects: dict[int, int]) -> None:
        """Record the subjects of faces the vector index already holds."""
        self._face_subjects.update(face_subjects)

    def remove(self, face_ids: list[int]) -> None:
        if face_ids:
            self.index.remove(np.asarray(face_ids, dtype=np.int64))
        for face_id in face_ids:
            self._face_subjects.pop(face_id, None)
        self.unsaved_changes = self.unsaved_changes or bool(face_ids)

    def best_subjects(self, embedding: NDArray[np.float32], *, k: int) -> list[SubjectHit]:
        """The `k` subjects most similar to `embedding`, best first (fewer if the gallery
        is; none from an empty one)."""
        total = len(self.index)
        if total == 0:
            return []
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
