"""Enrolling photos of a subject: one usable face per photo, stored completely or not at all.

A photo's rows (photo, face, embedding), its files (original and chip) and its
change-log entry are written in one transaction that holds the gallery's lock
(`app.gallery.changes`); if any step fails the files are removed, and a crash
before the commit leaves files without rows, which the start-up sweep removes.

The photo is embedded with the runtime taken when the photo arrived; if a
reindex in any process switched the model before the transaction, the face is
embedded again with the new model rather than stored under the wrong version.
"""

import hashlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.actor import Actor
from app.audit.trail import record
from app.db.engine import session_scope
from app.db.tables import Embedding, Face, Photo
from app.db.vectors import vector_to_bytes
from app.gallery import model_versions
from app.gallery.changes import GalleryWrite, gallery_write
from app.gallery.context import GalleryContext
from app.gallery.errors import ModelSwitched
from app.gallery.face_rules import face_side, too_small_reason
from app.gallery.faces import face_view
from app.gallery.runtime import ModelRuntime
from app.gallery.subjects import require_subject
from app.schemas import FaceOut, PhotoOutcome, RefusalReason
from app.vision.detection import Detection
from app.vision.errors import ImageRejected, ImageTooLarge
from app.vision.images import decode_image

FacePolicy = Literal["single", "largest"]
# Embed again after a model switch once; a second switch within one photo is refused.
_ATTEMPTS = 2


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


class _ModelSwitched(Exception):
    """The active model changed after the photo was embedded."""


class Refused(Exception):
    """One photo cannot be enrolled; the others of the request still can."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def enroll_photos(
    context: GalleryContext,
    subject_id: int,
    uploads: list[Upload],
    *,
    policy: FacePolicy,
    by: Actor,
) -> list[PhotoOutcome]:
    """Enroll each upload for the subject; each gets its own outcome and audit record
    (an enrolled or duplicate photo's in the transaction that stores or finds it)."""
    with session_scope(context.sessions) as session:
        require_subject(session, subject_id)
    return [_enroll_one(context, subject_id, upload, policy, by) for upload in uploads]


def _enroll_one(
    context: GalleryContext, subject_id: int, upload: Upload, policy: FacePolicy, by: Actor
) -> PhotoOutcome:
    runtime = context.runtime()
    sha256 = hashlib.sha256(upload.data).hexdigest()
    try:
        image = _decode(context, upload)
        detection = choose_face(context, runtime.embedder.detect(image), policy=policy)
    except Refused as refused:
        outcome = PhotoOutcome(
            filename=upload.filename,
            status="refused",
            reason=refused.reason,
            detail=refused.detail,
        )
        with session_scope(context.sessions) as session:
            _record_outcome(session, by, subject_id, sha256, outcome, runtime.version.id)
        return outcome
    for _ in range(_ATTEMPTS):
        chip = runtime.embedder.align(image, detection)
        embedding = runtime.embedder.embed_chips([chip])[0]
        new_face = _NewFace(subject_id, upload, sha256, image, detection, chip, embedding)
        try:
            return _store(context, runtime, new_face, by)
        except _ModelSwitched:
            runtime = context.runtime()  # a reindex switched: embed again with its model
    raise ModelSwitched(
        "the model changed twice while this photo was being enrolled; send it again"
    )


def _decode(context: GalleryContext, upload: Upload) -> Image.Image:
    limit = context.policy.max_upload_bytes
    if len(upload.data) > limit:
        raise Refused("too_large", f"{len(upload.data):,} bytes; the limit is {limit:,}")
    try:
        return decode_image(upload.data, max_pixels=context.policy.max_pixels)
    except ImageTooLarge as error:
        raise Refused("too_large", str(error)) from error
    except ImageRejected as error:
        raise Refused("unreadable", str(error)) from error


def choose_face(
    context: GalleryContext, detections: list[Detection], *, policy: FacePolicy
) -> Detection:
    """The face to enroll. Faces too small or too uncertain to trust do not count, so a
    blurred passer-by behind the subject does not make a good photo unusable."""
    if not detections:
        raise Refused("no_face", "no face was found in the photo")
    usable = [d for d in detections if _usable_reason(context, d) is None]
    if not usable:
        best = max(detections, key=lambda d: d.box.area)
        reason = _usable_reason(context, best)
        assert reason is not None
        raise Refused(*reason)
    if len(usable) > 1 and policy == "single":
        raise Refused(
            "multiple_faces",
            f"{len(usable)} faces were found; send a photo of one person or use face=largest",
        )
    return max(usable, key=lambda d: d.box.area)


def _usable_reason(
    context: GalleryContext, detection: Detection
) -> tuple[RefusalReason, str] | None:
    too_small = too_small_reason(detection, min_side=context.policy.min_face_size)
    if too_small is not None:
        return "face_too_small", too_small
    if detection.probability < context.policy.min_probability:
        return "low_confidence", (
            f"detection probability {detection.probability:.2f} is below "
            f"{context.policy.min_probability:.2f}"
        )
    return None


def _quality(detection: Detection) -> float:
    """A rough 0–1 score: confident detections of faces at least 112 px across score 1."""
    return round(detection.probability * min(1.0, face_side(detection) / 112.0), 4)


def _store(
    context: GalleryContext, runtime: ModelRuntime, new: "_NewFace", by: Actor
) -> PhotoOutcome:
    """Rows, files and log entry of one face in one transaction that holds the gallery's
    lock, so a subject deleted or a model switched meanwhile is seen before anything is
    written. Files written for a transaction that fails are removed."""
    written: list[str] = []
    try:
        with gallery_write(context.sessions) as write:
            require_subject(write.session, new.subject_id)
            if model_versions.active_version_id(write.session) != runtime.version.id:
                raise _ModelSwitched
            duplicate, stale_files = _find_duplicate(write.session, new)
            outcome = duplicate or PhotoOutcome(
                filename=new.upload.filename,
                status="enrolled",
                face=_insert(context, write, runtime, new, written),
            )
            _record_outcome(
                write.session, by, new.subject_id, new.sha256, outcome, runtime.version.id
            )
    except BaseException:
        context.files.delete(written)
        raise
    context.files.delete(stale_files)
    context.follower.current()  # this process's index shows the face at once
    return outcome


def _record_outcome(
    session: Session,
    by: Actor,
    subject_id: int,
    sha256: str,
    outcome: PhotoOutcome,
    model_version_id: int,
) -> None:
    """The photo's audit record: its hash, never its bytes or its file name (which often
    names the person, and would outlive the subject's deletion)."""
    record(
        session,
        by,
        "enroll_photo",
        outcome="refused" if outcome.status == "refused" else "ok",
        subject_ids=[subject_id],
        details={
            "subject_id": subject_id,
            "image_sha256": sha256,
            "status": outcome.status,
            "reason": outcome.reason,
            "face_id": outcome.face.id if outcome.face else None,
        },
        model_version_id=model_version_id,
    )


@dataclass(frozen=True)
class _NewFace:
    subject_id: int
    upload: Upload
    sha256: str
    image: Image.Image
    detection: Detection
    chip: NDArray[np.uint8]
    embedding: NDArray[np.float32]


def _find_duplicate(session: Session, new: "_NewFace") -> tuple[PhotoOutcome | None, list[str]]:
    """The outcome for a photo already enrolled for the subject, else None. A stored photo
    whose face was deleted is no longer enrolled: its row goes, and its file is returned
    for deletion once the transaction commits."""
    existing = session.scalars(
        select(Photo).where(Photo.subject_id == new.subject_id, Photo.sha256 == new.sha256)
    ).one_or_none()
    if existing is None:
        return None, []
    if not existing.faces:
        session.delete(existing)
        session.flush()
        return None, [existing.stored_path]
    return PhotoOutcome(
        filename=new.upload.filename,
        status="duplicate",
        detail=f"this photo is already enrolled for the subject (photo {existing.id})",
        face=face_view(existing.faces[0]),
    ), []


def _insert(
    context: GalleryContext,
    write: GalleryWrite,
    runtime: ModelRuntime,
    new: "_NewFace",
    written: list[str],
) -> FaceOut:
    """The face's rows, its two files (listed in `written` as they land) and its log entry."""
    session = write.session
    photo = _photo_row(new)
    session.add(photo)
    session.flush()
    photo.stored_path = context.files.photo_path(photo.id, suffix=_suffix(new.upload))
    face = _face_row(new, photo_id=photo.id)
    session.add(face)
    session.flush()
    face.chip_path = context.files.chip_path(face.id)
    session.add(
        Embedding(
            face_id=face.id,
            model_version_id=runtime.version.id,
            vector=vector_to_bytes(new.embedding),
        )
    )
    context.files.write(photo.stored_path, new.upload.data)
    written.append(photo.stored_path)
    context.files.write_chip(face.chip_path, new.chip)
    written.append(face.chip_path)
    write.face_indexed(
        face_id=face.id, subject_id=new.subject_id, model_version_id=runtime.version.id
    )
    session.flush()
    return face_view(face)


def _photo_row(new: _NewFace) -> Photo:
    return Photo(
        subject_id=new.subject_id,
        sha256=new.sha256,
        original_filename=new.upload.filename,
        stored_path="",
        size_bytes=len(new.upload.data),
        width=new.image.width,
        height=new.image.height,
    )


def _face_row(new: _NewFace, *, photo_id: int) -> Face:
    box = new.detection.box
    return Face(
        photo_id=photo_id,
        subject_id=new.subject_id,
        x1=box.x1,
        y1=box.y1,
        x2=box.x2,
        y2=box.y2,
        landmarks=new.detection.landmarks.round(2).tolist(),
        detection_probability=new.detection.probability,
        quality=_quality(new.detection),
        chip_path="",
    )


def _suffix(upload: Upload) -> str:
    suffix = PurePath(upload.filename).suffix.lower()
    return suffix if suffix.isascii() and 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""
