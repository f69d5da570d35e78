"""Enrolling photos of a subject: one usable face per photo, stored completely or not at all.

A photo's rows (photo, face, embedding), its files (original and chip) and its
index entry are written under the gallery's write lock; if any step fails the
earlier ones are undone, so a crash or a bad file never leaves half a face.
"""

import hashlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from sqlalchemy import select

from app.db.engine import session_scope
from app.db.tables import Embedding, Face, Photo
from app.db.vectors import vector_to_bytes
from app.gallery.context import GalleryContext
from app.gallery.faces import face_view
from app.gallery.subjects import require_subject
from app.schemas import FaceOut, PhotoOutcome, RefusalReason
from app.vision.detection import Detection
from app.vision.errors import ImageRejected, ImageTooLarge
from app.vision.images import decode_image

FacePolicy = Literal["single", "largest"]


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


class Refused(Exception):
    """One photo cannot be enrolled; the others of the request still can."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def enroll_photos(
    context: GalleryContext, subject_id: int, uploads: list[Upload], *, policy: FacePolicy
) -> list[PhotoOutcome]:
    """Enroll each upload for the subject; each gets its own outcome."""
    with session_scope(context.sessions) as session:
        require_subject(session, subject_id)
    return [_enroll_one(context, subject_id, upload, policy) for upload in uploads]


def _enroll_one(
    context: GalleryContext, subject_id: int, upload: Upload, policy: FacePolicy
) -> PhotoOutcome:
    try:
        image = _decode(context, upload)
        detection = choose_face(context, context.runtime.embedder.detect(image), policy=policy)
    except Refused as refused:
        return PhotoOutcome(
            filename=upload.filename,
            status="refused",
            reason=refused.reason,
            detail=refused.detail,
        )
    return _store(context, subject_id, upload, image, detection)


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
    side = min(detection.box.width, detection.box.height)
    if side < context.policy.min_face_size:
        return "face_too_small", (
            f"the face is {side:.0f} px; at least {context.policy.min_face_size} px is needed"
        )
    if detection.probability < context.policy.min_probability:
        return "low_confidence", (
            f"detection probability {detection.probability:.2f} is below "
            f"{context.policy.min_probability:.2f}"
        )
    return None


def _quality(detection: Detection) -> float:
    """A rough 0–1 score: confident detections of faces at least 112 px across score 1."""
    side = min(detection.box.width, detection.box.height)
    return round(detection.probability * min(1.0, side / 112.0), 4)


def _store(
    context: GalleryContext,
    subject_id: int,
    upload: Upload,
    image: Image.Image,
    detection: Detection,
) -> PhotoOutcome:
    runtime = context.runtime
    chip = runtime.embedder.align(image, detection)
    embedding = runtime.embedder.embed_chips([chip])[0]
    sha256 = hashlib.sha256(upload.data).hexdigest()
    with context.write_lock:
        duplicate = _find_duplicate(context, subject_id, sha256, upload)
        if duplicate is not None:
            return duplicate
        new_face = _NewFace(subject_id, upload, sha256, image, detection, chip, embedding)
        view, written = _insert(context, new_face)
        try:
            runtime.index.add(face_id=view.id, subject_id=subject_id, embedding=embedding)
        except BaseException:
            _undo(context, photo_id=view.photo_id, files=written)
            raise
    return PhotoOutcome(filename=upload.filename, status="enrolled", face=view)


@dataclass(frozen=True)
class _NewFace:
    subject_id: int
    upload: Upload
    sha256: str
    image: Image.Image
    detection: Detection
    chip: NDArray[np.uint8]
    embedding: NDArray[np.float32]


def _find_duplicate(
    context: GalleryContext, subject_id: int, sha256: str, upload: Upload
) -> PhotoOutcome | None:
    with session_scope(context.sessions) as session:
        existing = session.scalars(
            select(Photo).where(Photo.subject_id == subject_id, Photo.sha256 == sha256)
        ).one_or_none()
        if existing is None:
            return None
        first = existing.faces[0] if existing.faces else None
        return PhotoOutcome(
            filename=upload.filename,
            status="duplicate",
            detail=f"this photo is already enrolled for the subject (photo {existing.id})",
            face=face_view(first) if first else None,
        )


def _insert(context: GalleryContext, new: _NewFace) -> tuple[FaceOut, list[str]]:
    """Rows and files of one face in one transaction; files are removed if it fails."""
    written: list[str] = []
    try:
        with session_scope(context.sessions) as session:
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
                    model_version_id=context.runtime.version.id,
                    vector=vector_to_bytes(new.embedding),
                )
            )
            context.files.write(photo.stored_path, new.upload.data)
            written.append(photo.stored_path)
            context.files.write_chip(face.chip_path, new.chip)
            written.append(face.chip_path)
            session.flush()
            view = face_view(face)
    except BaseException:
        context.files.delete(written)
        raise
    return view, written


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


def _undo(context: GalleryContext, *, photo_id: int, files: list[str]) -> None:
    """Take back a committed photo whose index entry could not be added."""
    with session_scope(context.sessions) as session:
        photo = session.get(Photo, photo_id)
        if photo is not None:
            session.delete(photo)
    context.files.delete(files)


def _suffix(upload: Upload) -> str:
    suffix = PurePath(upload.filename).suffix.lower()
    return suffix if suffix.isascii() and 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""
