"""Re-embedding every stored face with another backbone while probes go on.

The new model version's embedding rows and index are built to one side; probes
and enrollments, in this process and every other, keep using the old version
meanwhile (faces enrolled now get old-version embeddings only). Only the last
step holds the gallery's lock: faces enrolled in the meantime are embedded,
faces deleted in the meantime leave the new index, and the switch is committed
with a `model_activated` change that every other process follows. Each
process replaces its runtime by one assignment, so a probe answers wholly from
the old version or wholly from the new one. Until that step nothing is
switched: a cancelled or failed reindex deletes the new version's rows and
index file, and one killed outright leaves a lapsed lease on its version, by
which the start-up sweep knows its rows for leftovers.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, Exists, delete, exists, func, select, update
from sqlalchemy.orm import Session

from app.db.engine import session_scope
from app.db.tables import Embedding, Face, ModelVersion, Photo
from app.db.types import utc_now
from app.db.vectors import vector_to_bytes
from app.gallery import model_versions
from app.gallery.calibration import calibrated_threshold
from app.gallery.changes import gallery_write
from app.gallery.context import GalleryContext
from app.gallery.errors import GalleryError, OperationCancelled
from app.gallery.gallery_index import GalleryIndex
from app.gallery.index_sync import rebuild_with_subjects
from app.gallery.model_versions import ModelVersionInfo
from app.gallery.owners import is_dead, this_process
from app.gallery.runtime import ModelRuntime
from app.vision.alignment import align_face
from app.vision.backbones.registry import create_backbone
from app.vision.embedder import FaceEmbedder
from app.vision.images import decode_image

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]
Chip = NDArray[np.uint8]

DEFAULT_BATCH_SIZE = 32
# Renewed with every batch (seconds of work on a CPU), so only a dead reindex lets it lapse.
REINDEX_LEASE = timedelta(minutes=10)
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
        detector=context.runtime().embedder.detector,
        backbone=create_backbone(backbone, device=device, weights=weights, models_dir=models_dir),
        batch_size=batch_size,
    )
    version = _register(context, embedder, models_dir)
    try:
        realigned, index = _embed_all(context, embedder, version, report, stop, batch_size)
        caught_up = _switch(context, embedder, version, index, stop)
    except BaseException:
        _discard(context, version)  # leaves a version that did get switched to alone
        raise
    try:
        context.follower.save()
    except OSError:
        log.exception("switched to %s, but its index could not be saved", version.key)
    log.info("reindexed %d faces under %s", len(index), version.key)
    return ReindexResult(
        version=version, faces=len(index), caught_up=caught_up, realigned=realigned
    )


def _register(
    context: GalleryContext, embedder: FaceEmbedder, models_dir: Path
) -> ModelVersionInfo:
    """The new version, registered but not active, and no index file left from earlier."""
    backbone = embedder.backbone
    active = context.runtime().version
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
    with gallery_write(context.sessions) as write:
        row = model_versions.register(write.session, backbone, threshold=threshold)
        if _built_elsewhere(row):
            raise ReindexRefused(
                f"another process ({row.building_by}) is reindexing to {backbone.name} now"
            )
        row.building_until, row.building_by = lease_end(), this_process()
        version = model_versions.snapshot(row)
    context.index_store.delete(version.key)
    return version


def _built_elsewhere(row: ModelVersion) -> bool:
    """Whether a live reindex in another process holds `row`'s lease."""
    return (
        row.building_by not in (None, this_process())
        and row.building_until is not None
        and row.building_until > utc_now()
        and not is_dead(row.building_by)
    )


def renew_lease(session: Session, version: ModelVersionInfo) -> None:
    """Keep the sweep of other processes' start-ups off this reindex's rows."""
    session.execute(
        update(ModelVersion).where(ModelVersion.id == version.id).values(building_until=lease_end())
    )


def lease_end() -> datetime:
    """When a reindex that stops renewing its lease is taken for dead (see `app.gallery.sweep`)."""
    return utc_now() + REINDEX_LEASE


def _embed_all(
    context: GalleryContext,
    embedder: FaceEmbedder,
    version: ModelVersionInfo,
    report: Progress,
    stop: Cancelled,
    batch_size: int,
) -> tuple[int, GalleryIndex]:
    """Embed the faces present at the start, batch by batch; build the index."""
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
        index = GalleryIndex(*rebuild_with_subjects(session, version, context.index_store))
    index.unsaved_changes = True  # built from the rows, on no disk yet: the switch saves it
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
    with gallery_write(context.sessions) as write:
        write.session.execute(
            delete(Embedding).where(_of(version), Embedding.face_id.in_(face_ids))
        )
        store_present(write.session, version, dict(zip(chips, vectors, strict=True)))
        renew_lease(write.session, version)
    return realigned


def _switch(
    context: GalleryContext,
    embedder: FaceEmbedder,
    version: ModelVersionInfo,
    index: GalleryIndex,
    stop: Cancelled,
) -> int:
    """Catch up with changes made meanwhile and make `version` active. Return faces caught up.

    Most of the catching up runs before the gallery's lock is taken; under it only
    what was enrolled in the last moments is embedded, then the switch is committed
    with its `model_activated` entry, and this process adopts the new runtime.
    """
    caught_up = embed_missing(context, embedder, version, index)
    # Asked before the lock is taken: the question may write (a job's heartbeat) on
    # another connection, which would wait for this transaction's lock forever.
    if stop():
        raise OperationCancelled("the reindex was cancelled")
    with context.follower.switching() as install, gallery_write(context.sessions) as write:
        session = write.session
        caught_up += _embed_missing_locked(context, session, embedder, version, index)
        stored = set(session.scalars(select(Embedding.face_id).where(_of(version))))
        index.remove([int(face_id) for face_id in index.index.ids() if face_id not in stored])
        row = session.get_one(ModelVersion, version.id)
        model_versions.activate(session, row)
        row.building_until = row.building_by = None
        write.model_activated(model_version_id=version.id)
        seq = write.commit()  # inside the follower's lock, so no probe loads the model again
        install(ModelRuntime(embedder=embedder, version=version, index=index), seq)
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
    `batch_size` at a time; return how many. When `version` is the active one, each
    stored face is logged as indexed, so every other process adds it too."""
    with session_scope(context.sessions) as session:
        missing = _missing_faces(session, version)
    done = 0
    for start in range(0, len(missing), batch_size):
        with session_scope(context.sessions) as session:
            sources = _face_sources(session, missing[start : start + batch_size])
        vectors = _embed_sources(context, embedder, sources)
        with gallery_write(context.sessions) as write:
            stored = store_present(write.session, version, vectors)
            if model_versions.active_version_id(write.session) != version.id:
                renew_lease(write.session, version)
            else:
                for source in sources:
                    if source.face_id in stored:
                        write.face_indexed(
                            face_id=source.face_id,
                            subject_id=source.subject_id,
                            model_version_id=version.id,
                        )
        _add_to(index, sources, vectors, stored)
        done += len(stored)
        if len(missing) > batch_size:
            log.info("embedded %d of %d missing faces", start + len(sources), len(missing))
    return done


def _embed_missing_locked(
    context: GalleryContext,
    session: Session,
    embedder: FaceEmbedder,
    version: ModelVersionInfo,
    index: GalleryIndex,
) -> int:
    """`embed_missing` inside the caller's locked transaction, for the last few faces."""
    sources = _face_sources(session, _missing_faces(session, version))
    vectors = _embed_sources(context, embedder, sources)
    stored = store_present(session, version, vectors)
    _add_to(index, sources, vectors, stored)
    return len(stored)


def _missing_faces(session: Session, version: ModelVersionInfo) -> list[int]:
    return list(session.scalars(select(Face.id).where(~_has_embedding(version)).order_by(Face.id)))


def _embed_sources(
    context: GalleryContext, embedder: FaceEmbedder, sources: list[FaceSource]
) -> dict[int, NDArray[np.float32]]:
    chips = [_chip_for(context, embedder, source)[0] for source in sources]
    vectors = embedder.embed_chips(chips)
    return {source.face_id: vector for source, vector in zip(sources, vectors, strict=True)}


def _add_to(
    index: GalleryIndex,
    sources: list[FaceSource],
    vectors: dict[int, NDArray[np.float32]],
    stored: set[int],
) -> None:
    kept = [s for s in sources if s.face_id in stored and s.face_id not in index]
    index.add_many(
        face_ids=[source.face_id for source in kept],
        subject_ids=[source.subject_id for source in kept],
        embeddings=[vectors[source.face_id] for source in kept],
    )


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


def store_present(
    session: Session, version: ModelVersionInfo, vectors: dict[int, NDArray[np.float32]]
) -> set[int]:
    """Store the vectors of the faces that still exist and have none under `version` yet;
    return their ids. The caller holds the gallery's lock, so none of them can be
    deleted, or embedded by another process, before the commit."""
    wanted = list(vectors)
    present = set(session.scalars(select(Face.id).where(Face.id.in_(wanted))))
    present -= set(
        session.scalars(
            select(Embedding.face_id).where(_of(version), Embedding.face_id.in_(wanted))
        )
    )
    session.add_all(
        Embedding(face_id=face_id, model_version_id=version.id, vector=vector_to_bytes(vector))
        for face_id, vector in vectors.items()
        if face_id in present
    )
    session.flush()
    return present


def _has_embedding(version: ModelVersionInfo) -> Exists:
    """True for a face that has an embedding under `version`."""
    return exists().where(Embedding.face_id == Face.id, _of(version))


def _of(version: ModelVersionInfo) -> ColumnElement[bool]:
    return Embedding.model_version_id == version.id


def _discard(context: GalleryContext, version: ModelVersionInfo) -> None:
    """Delete what an unfinished reindex wrote; the version row stays, inactive. A
    version that is active (this reindex switched before it failed, or another one
    did) keeps everything."""
    with gallery_write(context.sessions) as write:
        row = write.session.get_one(ModelVersion, version.id)
        if row.active:
            return
        write.session.execute(delete(Embedding).where(_of(version)))
        row.building_until = row.building_by = None
    context.index_store.delete(version.key)
