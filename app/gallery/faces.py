"""Enrolled faces: listing them, serving their chips, deleting one."""

from sqlalchemy import func, select

from app.audit.actor import Actor
from app.audit.trail import record
from app.db.engine import session_scope
from app.db.tables import Face, Photo
from app.gallery.changes import gallery_write
from app.gallery.context import GalleryContext
from app.gallery.errors import FaceNotFound
from app.gallery.subjects import require_subject
from app.schemas import BoxOut, FaceOut


def face_view(face: Face) -> FaceOut:
    return FaceOut(
        id=face.id,
        subject_id=face.subject_id,
        photo_id=face.photo_id,
        box=BoxOut(x1=face.x1, y1=face.y1, x2=face.x2, y2=face.y2),
        landmarks=face.landmarks,
        detection_probability=face.detection_probability,
        quality=face.quality,
        created_at=face.created_at,
    )


def list_faces(context: GalleryContext, subject_id: int) -> list[FaceOut]:
    with session_scope(context.sessions) as session:
        require_subject(session, subject_id)
        faces = session.scalars(select(Face).where(Face.subject_id == subject_id).order_by(Face.id))
        return [face_view(face) for face in faces]


def first_face_ids(context: GalleryContext, subject_ids: list[int]) -> dict[int, int]:
    """Each subject's earliest enrolled face (its thumbnail), in one query; subjects
    without faces, or gone, are absent."""
    with session_scope(context.sessions) as session:
        rows = session.execute(
            select(Face.subject_id, func.min(Face.id))
            .where(Face.subject_id.in_(subject_ids))
            .group_by(Face.subject_id)
        )
        return {subject_id: face_id for subject_id, face_id in rows}


def photo_hashes(context: GalleryContext, subject_id: int) -> set[str]:
    """The SHA-256 of every photo enrolled for the subject."""
    with session_scope(context.sessions) as session:
        return set(session.scalars(select(Photo.sha256).where(Photo.subject_id == subject_id)))


def chip_jpeg(context: GalleryContext, face_id: int) -> bytes:
    """The face's aligned chip, as JPEG."""
    with session_scope(context.sessions) as session:
        face = session.get(Face, face_id)
        if face is None:
            raise FaceNotFound(face_id)
        chip_path = face.chip_path
    return context.files.chip_jpeg(chip_path)


def delete_face(context: GalleryContext, face_id: int, *, by: Actor) -> None:
    """Remove one face: its embeddings, chip and index entries, and its photo, which
    was enrolled for this face alone (so the same photo can be enrolled again)."""
    with gallery_write(context.sessions) as write:
        face = write.session.get(Face, face_id)
        if face is None:
            raise FaceNotFound(face_id)
        files = [face.chip_path]
        photo = face.photo
        write.session.delete(face)
        write.session.flush()
        if not photo.faces:
            files.append(photo.stored_path)
            write.session.delete(photo)
        write.face_removed(face_id=face_id, subject_id=face.subject_id)
        record(
            write.session,
            by,
            "face_delete",
            subject_ids=[face.subject_id],
            details={"face_id": face_id, "subject_id": face.subject_id},
        )
    context.files.delete(files)
    context.follower.current()
