"""Bringing an in-memory index in line with the database: at start-up and change by change.

The database is the source of truth. A saved index (a snapshot) records the
last change of the change log it contains; loading it replays only the
changes after that one, and then compares its face ids with the database's
for the same model version (a checksum), rebuilding from the stored
embedding rows when they differ.

Replaying is idempotent: a face already held is not added twice and a face
not held is not removed. So an index may safely contain changes past the
number it is said to be at (a rebuild reads rows committed after the head
was read); the next catch-up replays them without effect.
"""

import logging
from collections.abc import Iterable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import Embedding, Face
from app.db.vectors import vector_from_bytes
from app.gallery.changes import Change, changes_after, latest_seq
from app.gallery.gallery_index import GalleryIndex
from app.gallery.model_versions import ModelVersionInfo
from app.index import IndexStore, VectorIndex, ids_checksum

log = logging.getLogger(__name__)

# Face ids per `IN (...)` query: well under every backend's parameter limit.
_ID_CHUNK = 500


def load_index(
    session: Session, store: IndexStore, version: ModelVersionInfo
) -> tuple[GalleryIndex, int]:
    """The index of `version` and the change it is up to: the snapshot plus the changes
    after it when it agrees with the database, else rebuilt from the stored rows."""
    head = latest_seq(session)
    index, changed = _snapshot_caught_up(session, store, version, head)
    subjects = face_subjects(session, version)
    expected = ids_checksum(np.fromiter(subjects, dtype=np.int64))
    if index is None or ids_checksum(index.ids()) != expected:
        log.info("rebuilding the %s index from %d stored embeddings", version.key, len(subjects))
        # Vectors and subjects from one statement, so no face lands in one but not the other.
        index, subjects = rebuild_with_subjects(session, version, store)
        changed = True
    loaded = GalleryIndex(index, subjects)
    loaded.unsaved_changes = changed  # so the next save spares the next start the work
    return loaded, head


def apply_changes(
    session: Session, index: GalleryIndex, version: ModelVersionInfo, changes: Iterable[Change]
) -> None:
    """Apply logged changes to `index` of `version`: faces indexed under it are added
    (their vectors read from the database), removed faces leave."""
    removed: set[int] = set()
    indexed: dict[int, int] = {}
    for change in changes:
        if change.face_id is None:
            continue
        if change.kind == "face_removed":
            removed.add(change.face_id)
        elif change.kind == "face_indexed" and change.model_version_id == version.id:
            assert change.subject_id is not None
            indexed[change.face_id] = change.subject_id
    kept = {face_id: subject for face_id, subject in indexed.items() if face_id not in removed}
    # A face the index already holds (a rebuild read it before its change was replayed)
    # may still be missing from the subject map, which came from another statement.
    index.know_subjects({f: s for f, s in kept.items() if f in index})
    wanted = [face_id for face_id in kept if face_id not in index]
    vectors = stored_vectors(session, version, wanted)
    index.add_many(
        face_ids=list(vectors),
        subject_ids=[indexed[face_id] for face_id in vectors],
        embeddings=list(vectors.values()),
    )
    index.remove([face_id for face_id in removed if face_id in index])


def stored_vectors(
    session: Session, version: ModelVersionInfo, face_ids: list[int]
) -> dict[int, np.ndarray]:
    """The stored embeddings of `face_ids` under `version`; faces gone since are absent."""
    vectors: dict[int, np.ndarray] = {}
    for start in range(0, len(face_ids), _ID_CHUNK):
        chunk = face_ids[start : start + _ID_CHUNK]
        rows = session.execute(
            select(Embedding.face_id, Embedding.vector).where(
                Embedding.model_version_id == version.id, Embedding.face_id.in_(chunk)
            )
        )
        for face_id, vector in rows:
            vectors[face_id] = vector_from_bytes(vector, version.embedding_dim)
    return vectors


def rebuild_with_subjects(
    session: Session, version: ModelVersionInfo, store: IndexStore
) -> tuple[VectorIndex, dict[int, int]]:
    """A fresh index (of `store`'s kind) of every stored embedding of `version`, and each
    face's subject."""
    rows = session.execute(
        select(Embedding.face_id, Face.subject_id, Embedding.vector)
        .join(Face, Face.id == Embedding.face_id)
        .where(Embedding.model_version_id == version.id)
    )
    subjects: dict[int, int] = {}
    vectors: list[np.ndarray] = []
    for face_id, subject_id, vector in rows:
        subjects[face_id] = subject_id
        vectors.append(vector_from_bytes(vector, version.embedding_dim))
    index = store.new_index(version.embedding_dim, expected_size=len(subjects))
    if subjects:
        index.add(np.fromiter(subjects, dtype=np.int64), np.stack(vectors))
    return index, subjects


def _snapshot_caught_up(
    session: Session, store: IndexStore, version: ModelVersionInfo, head: int
) -> tuple[VectorIndex | None, bool]:
    """The saved index of `version` with the changes after it replayed (or None), and
    whether it now differs from the saved one."""
    snapshot = store.load_snapshot(version.key)
    if snapshot is None:
        return None, True
    saved, seq = snapshot
    if seq > head:
        log.warning("the %s snapshot is newer than the database; rebuilding", version.key)
        return None, True
    caught_up = GalleryIndex(saved, {})
    apply_changes(session, caught_up, version, changes_after(session, seq, upto=head))
    return caught_up.index, seq < head


def face_subjects(session: Session, version: ModelVersionInfo) -> dict[int, int]:
    """Which subject each face embedded under `version` belongs to."""
    rows = session.execute(
        select(Face.id, Face.subject_id)
        .join(Embedding, Embedding.face_id == Face.id)
        .where(Embedding.model_version_id == version.id)
    )
    return {face_id: subject_id for face_id, subject_id in rows}
