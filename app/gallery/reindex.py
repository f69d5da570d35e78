"""Re-embedding every stored face with another backbone while probes go on.

The new model version's embedding rows and index are built to one side; probes
and enrollments keep using the old runtime meanwhile (faces enrolled now get
old-version embeddings only). Only the last step takes the write lock: faces
enrolled in the meantime are embedded, faces deleted in the meantime leave the
new index, and `context.runtime` is replaced by one assignment, so a probe
answers wholly from the old version or wholly from the new one. Until that
step nothing is switched: a cancelled or failed reindex deletes the new
version's rows and index file.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, Exists, delete, exists, func, select
from sqlalchemy.orm import Session

from app.db.engine import session_scope
from app.db.tables import Embedding, Face, ModelVersion, Photo
from app.db.vectors import vector_to_bytes
from app.gallery import model_versions
from app.gallery.calibration import calibrated_threshold
from app.gallery.context import GalleryContext, ModelRuntime
from app.gallery.errors import GalleryError, OperationCancelled
from app.gallery.gallery_index import GalleryIndex
from app.gallery.index_sync import load_or_rebuild
from app.gallery.model_versions import ModelVersionInfo
from app.vision.alignment import align_face
from app.vision.backbones.registry import create_backbone
from app.vision.embedder import FaceEmbedder
from app.vision.images import decode_image

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]
Chip = NDArray[np.uint8]

DEFAULT_BATCH_SIZE = 32
# Embedding the faces is nearly all of the work; building and switching the rest.
_EMBEDDING_SHARE = 0.9


class ReindexRefused(GalleryError):
    """The reindex cannot start: same version as the active one, or no threshold for it."""

    code = "reindex_refused"


@dataclass(frozen=True)
class ReindexResult:
    """The version now active, and how its faces were embedded."""

    version: ModelVersionInfo
    faces: int
    caught_up: int
    realigned: int


@dataclass(frozen=True)
class FaceSource:
    """Where a face's pixels are: its chip, cut for `chip_alignment`, or its photo."""

    face_id: int
    subject_id: int
    chip_path: str
    photo_path: str
    landmarks: list[list[float]]
    chip_alignment: str | None


def reindex(
    context: GalleryContext,
    *,
    backbone: str,
    device: torch.device,
    models_dir: Path,
    weights: Path | None = None,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ReindexResult:
    """Embed every face with `backbone` into a new version, then make that version active.

    `progress` hears after each batch; `cancelled` is asked between batches and
    once more just before the switch (`OperationCancelled` if it says yes).
    Nothing runs after the switch that could fail and make a switched reindex
    look failed.
    """
    report = progress or (lambda _fraction, _message: None)
    stop = cancelled or (lambda: False)
    embedder = FaceEmbedder(
        detector=context.runtime.embedder.detector,
        backbone=create_backbone(backbone, device=device, weights=weights, models_dir=models_dir),
        batch_size=batch_size,
    )
    version = _register(context, embedder, models_dir)
    try:
        realigned, index = _embed_all(context, embedder, version, report, stop, batch_size)
        caught_up = _switch(context, embedder, version, index, stop)
    except BaseException:
        _discard(context, version)
        raise
    log.info("reindexed %d faces under %s", len(index), version.key)
    return ReindexResult(
        version=version, faces=len(index), caught_up=caught_up, realigned=realigned
    )


def _register(
    context: GalleryContext, embedder: FaceEmbedder, models_dir: Path
) -> ModelVersionInfo:
    """The new version, registered but not active, and no index file left from earlier."""
    backbone = embedder.backbone
    active = context.runtime.version
    if (backbone.name, backbone.version) == (active.backbone, active.weights_hash):
        raise ReindexRefused(f"{active.key} is already the active model version")
    threshold = calibrated_threshold(
        models_dir, backbone=backbone.name, weights_hash=backbone.version
    )
    if threshold is None and context.threshold_override is None:
        raise ReindexRefused(
            f"{backbone.name}@{backbone.version} has no calibrated threshold in {models_dir} "
            "and LINEUP_MATCH_THRESHOLD is not set; calibrate it (see README) before reindexing"
        )
    with session_scope(context.sessions) as session:
        version = model_versions.snapshot(
            model_versions.register(session, backbone, threshold=threshold)
        )
    context.index_store.delete(version.key)
    return version


def _embed_all(
    context: GalleryContext,
    embedder: FaceEmbedder,
    version: ModelVersionInfo,
    report: Progress,
    stop: Cancelled,
    batch_size: int,
) -> tuple[int, GalleryIndex]:
    """Embed the faces present at the start, batch by batch; build and save the index."""
    with session_scope(context.sessions) as session:
        face_ids = list(session.scalars(select(Face.id).order_by(Face.id)))
    realigned = 0
    for start in range(0, len(face_ids), batch_size):
        if stop():
            raise OperationCancelled("the reindex was cancelled")
        batch = face_ids[start : start + batch_size]
        realigned += _embed_batch(context, embedder, version, batch)
        done = start + len(batch)
        report(_EMBEDDING_SHARE * done / len(face_ids), f"embedded {done} of {len(face_ids)} faces")
    if stop():
        raise OperationCancelled("the reindex was cancelled")
    with session_scope(context.sessions) as session:
        index = load_or_rebuild(session, context.index_store, version)
    report(_EMBEDDING_SHARE + 0.05, f"built the {version.key} index; switching")
    return realigned, index


def _embed_batch(
    context: GalleryContext, embedder: FaceEmbedder, version: ModelVersionInfo, face_ids: list[int]
) -> int:
    """Embed and store one batch; a face deleted meanwhile is skipped. Return re-alignments.

    Rows this version wrote when it was last active are replaced, not trusted:
    they may predate a change of chip. They are deleted only now, because until
    then the face's first embedding says which template its chip was cut for.
    """
    with session_scope(context.sessions) as session:
        sources = _face_sources(session, face_ids)
    chips: dict[int, Chip] = {}
    realigned = 0
    for source in sources:
        try:
            chips[source.face_id], fresh = _chip_for(context, embedder, source)
        except FileNotFoundError:
            continue  # deleted meanwhile; if it was not, the catch-up fails loudly on it
        realigned += fresh
    vectors = embedder.embed_chips(list(chips.values()))
    # Under the lock, so a face cannot be deleted between the check and the insert.
    with context.write_lock, session_scope(context.sessions) as session:
        present = set(session.scalars(select(Face.id).where(Face.id.in_(list(chips)))))
        session.execute(delete(Embedding).where(_of(version), Embedding.face_id.in_(face_ids)))
        _store_vectors(
            session, version, {f: v for f, v in zip(chips, vectors, strict=True) if f in present}
        )
    return realigned


def _switch(
    context: GalleryContext,
    embedder: FaceEmbedder,
    version: ModelVersionInfo,
    index: GalleryIndex,
    stop: Cancelled,
) -> int:
    """Catch up with changes made meanwhile and make `version` active. Return faces caught up."""
    with context.write_lock:
        if stop():
            raise OperationCancelled("the reindex was cancelled")
        caught_up = embed_missing(context, embedder, version, index)
        with session_scope(context.sessions) as session:
            stored = set(session.scalars(select(Embedding.face_id).where(_of(version))))
        index.remove([int(face_id) for face_id in index.index.ids() if face_id not in stored])
        _save_if_changed(context, index, version.key)
        old = context.runtime
        _save_if_changed(context, old.index, old.version.key)
        with session_scope(context.sessions) as session:
            model_versions.activate(session, session.get_one(ModelVersion, version.id))
        context.runtime = ModelRuntime(embedder=embedder, version=version, index=index)
    return caught_up


def embed_missing(
    context: GalleryContext,
    embedder: FaceEmbedder,
    version: ModelVersionInfo,
    index: GalleryIndex,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Embed, store and add to `index` every face without an embedding under `version`,
    `batch_size` at a time; return how many. The caller holds the write lock, or has
    not shared the gallery yet."""
    with session_scope(context.sessions) as session:
        missing = list(
            session.scalars(select(Face.id).where(~_has_embedding(version)).order_by(Face.id))
        )
    for start in range(0, len(missing), batch_size):
        with session_scope(context.sessions) as session:
            sources = _face_sources(session, missing[start : start + batch_size])
        chips = [_chip_for(context, embedder, source)[0] for source in sources]
        vectors = embedder.embed_chips(chips)
        with session_scope(context.sessions) as session:
            _store_vectors(
                session, version, {s.face_id: v for s, v in zip(sources, vectors, strict=True)}
            )
        for source, vector in zip(sources, vectors, strict=True):
            index.add(face_id=source.face_id, subject_id=source.subject_id, embedding=vector)
        if len(missing) > batch_size:
            log.info("embedded %d of %d missing faces", start + len(sources), len(missing))
    return len(missing)


def _face_sources(session: Session, face_ids: list[int]) -> list[FaceSource]:
    """The faces among `face_ids` that still exist, with the alignment their chip was cut for.

    A chip is cut for the version active at enrollment, which wrote the face's
    first embedding.
    """
    first = (
        select(Embedding.face_id, func.min(Embedding.id).label("embedding_id"))
        .where(Embedding.face_id.in_(face_ids))
        .group_by(Embedding.face_id)
        .subquery()
    )
    rows = session.execute(
        select(Face, Photo.stored_path, ModelVersion.alignment)
        .join(Photo, Photo.id == Face.photo_id)
        .outerjoin(first, first.c.face_id == Face.id)
        .outerjoin(Embedding, Embedding.id == first.c.embedding_id)
        .outerjoin(ModelVersion, ModelVersion.id == Embedding.model_version_id)
        .where(Face.id.in_(face_ids))
        .order_by(Face.id)
    )
    return [
        FaceSource(face.id, face.subject_id, face.chip_path, photo_path, face.landmarks, alignment)
        for face, photo_path, alignment in rows
    ]


def _chip_for(
    context: GalleryContext, embedder: FaceEmbedder, source: FaceSource
) -> tuple[Chip, bool]:
    """The face as the new backbone's chip: the stored one if it was cut for the same
    template, else re-aligned from the stored photo with the stored landmarks (True)."""
    template = embedder.backbone.template
    if source.chip_alignment == template.name:
        chip = context.files.read_chip(source.chip_path)
        if chip.shape == (template.size, template.size, 3):
            return chip, False
    data = (context.files.root / source.photo_path).read_bytes()
    image = decode_image(data, max_pixels=context.policy.max_pixels)
    return align_face(image, np.asarray(source.landmarks, dtype=np.float64), template), True


def _store_vectors(
    session: Session, version: ModelVersionInfo, vectors: dict[int, NDArray[np.float32]]
) -> None:
    session.add_all(
        Embedding(face_id=face_id, model_version_id=version.id, vector=vector_to_bytes(vector))
        for face_id, vector in vectors.items()
    )


def _has_embedding(version: ModelVersionInfo) -> Exists:
    """True for a face that has an embedding under `version`."""
    return exists().where(Embedding.face_id == Face.id, _of(version))


def _of(version: ModelVersionInfo) -> ColumnElement[bool]:
    return Embedding.model_version_id == version.id


def _save_if_changed(context: GalleryContext, index: GalleryIndex, key: str) -> None:
    """Persist an index the caller holds the write lock on, so a restart need not rebuild it."""
    if index.unsaved_changes:
        context.index_store.save(index.index, model_version=key)
        index.unsaved_changes = False


def _discard(context: GalleryContext, version: ModelVersionInfo) -> None:
    """Delete what an unfinished reindex wrote; the version row stays, inactive."""
    with session_scope(context.sessions) as session:
        session.execute(delete(Embedding).where(_of(version)))
    context.index_store.delete(version.key)
