"""`/subjects`: the people in the gallery, their photos and faces."""

from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Response, UploadFile, status

from app.access.roles import Role
from app.api.auth import CallerDep, allow
from app.api.deps import GalleryDep, SettingsDep
from app.api.errors import error_responses, router_errors
from app.api.params import Limit, Offset, SubjectId
from app.api.uploads import read_at_most
from app.gallery.enroll import Upload
from app.schemas import (
    EnrollmentResult,
    FaceOut,
    SubjectCreate,
    SubjectOut,
    SubjectPage,
    SubjectUpdate,
)

router = APIRouter(prefix="/subjects", tags=["subjects"], responses=router_errors(503))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409),
    dependencies=[allow(Role.enroller)],
)
def create_subject(request: SubjectCreate, gallery: GalleryDep, caller: CallerDep) -> SubjectOut:
    """Add a person to the gallery (photos are enrolled separately)."""
    return gallery.create_subject(request, by=caller.actor)


@router.get("", dependencies=[allow(Role.viewer)])
def list_subjects(
    gallery: GalleryDep,
    q: Annotated[str | None, Query(description="Part of the name, or the external id.")] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> SubjectPage:
    """Subjects in creation order, optionally filtered."""
    return gallery.list_subjects(query=q, offset=offset, limit=limit)


@router.get("/{subject_id}", responses=error_responses(404), dependencies=[allow(Role.viewer)])
def get_subject(subject_id: SubjectId, gallery: GalleryDep) -> SubjectOut:
    return gallery.get_subject(subject_id)


@router.patch(
    "/{subject_id}", responses=error_responses(404, 409), dependencies=[allow(Role.enroller)]
)
def update_subject(
    subject_id: SubjectId, changes: SubjectUpdate, gallery: GalleryDep, caller: CallerDep
) -> SubjectOut:
    """Change only the fields sent."""
    return gallery.update_subject(subject_id, changes, by=caller.actor)


@router.delete(
    "/{subject_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404),
    dependencies=[allow(Role.admin)],
)
def delete_subject(subject_id: SubjectId, gallery: GalleryDep, caller: CallerDep) -> Response:
    """Delete the subject with its photos, faces, embeddings, files and index entries."""
    gallery.delete_subject(subject_id, by=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{subject_id}/photos",
    responses=error_responses(400, 404, 409),
    dependencies=[allow(Role.enroller)],
)
def enroll_photos(
    subject_id: SubjectId,
    gallery: GalleryDep,
    settings: SettingsDep,
    caller: CallerDep,
    files: Annotated[list[UploadFile], File(description="One or several photos.")],
    face: Annotated[
        Literal["single", "largest"],
        Query(
            description="`single`: refuse photos with several usable faces; "
            "`largest`: enroll the largest one."
        ),
    ] = "single",
) -> EnrollmentResult:
    """Enroll photos; each gets its own outcome (enrolled, duplicate, or refused with a reason)."""
    uploads = [
        Upload(
            filename=file.filename or "upload", data=read_at_most(file, settings.max_upload_bytes)
        )
        for file in files
    ]
    return gallery.enroll(subject_id, uploads, policy=face, by=caller.actor)


@router.get(
    "/{subject_id}/faces", responses=error_responses(404), dependencies=[allow(Role.viewer)]
)
def list_faces(subject_id: SubjectId, gallery: GalleryDep) -> list[FaceOut]:
    return gallery.list_faces(subject_id)
