"""Bringing the vector index in line with the database at start-up.

The database is the source of truth. The saved index is used only when its
sidecar's checksum of face ids equals the checksum of the faces embedded under
the same model version in the database; otherwise it is rebuilt from the
stored embedding rows, which takes seconds even for 100,000 faces.
"""

import logging

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import Embedding, Face
from app.db.vectors import vector_from_bytes
from app.gallery.gallery_index import GalleryIndex
from app.gallery.model_versions import ModelVersionInfo
from app.index import DEFAULT_INDEX_KIND, IndexStore, VectorIndex, create_index, ids_checksum

log = logging.getLogger(__name__)


def load_or_rebuild(session: Session, store: IndexStore, version: ModelVersionInfo) -> GalleryIndex:
    """The gallery index of `version`: the saved one if consistent, else rebuilt and saved."""
    rows = session.execute(
        select(Face.id, Face.subject_id)
        .join(Embedding, Embedding.face_id == Face.id)
        .where(Embedding.model_version_id == version.id)
    )
    face_subjects = {face_id: subject_id for face_id, subject_id in rows}
    checksum = ids_checksum(np.fromiter(face_subjects, dtype=np.int64))
    index = store.load_or_none(version.key, expected_ids_checksum=checksum)
    if index is None:
        log.info(
            "rebuilding the %s index from %d stored embeddings", version.key, len(face_subjects)
        )
        index = rebuild(session, version)
        store.save(index, model_version=version.key)
    return GalleryIndex(index, face_subjects)


def rebuild(session: Session, version: ModelVersionInfo) -> VectorIndex:
    """A fresh index holding every stored embedding of `version`."""
    index = create_index(DEFAULT_INDEX_KIND, version.embedding_dim)
    rows = session.execute(
        select(Embedding.face_id, Embedding.vector).where(Embedding.model_version_id == version.id)
    )
    face_ids: list[int] = []
    vectors: list[np.ndarray] = []
    for face_id, vector in rows:
        face_ids.append(face_id)
        vectors.append(vector_from_bytes(vector, version.embedding_dim))
    if face_ids:
        index.add(np.asarray(face_ids, dtype=np.int64), np.stack(vectors))
    return index
