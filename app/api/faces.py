"""`/faces`: one enrolled face, its aligned chip, its removal."""

from fastapi import APIRouter, Response, status

from app.access.roles import Role
from app.api.auth import CallerDep, allow
from app.api.deps import GalleryDep
from app.api.errors import error_responses, router_errors
from app.api.params import FaceId

router = APIRouter(prefix="/faces", tags=["faces"], responses=router_errors(503))


@router.get(
    "/{face_id}/chip",
    response_class=Response,
    responses={**error_responses(404), 200: {"content": {"image/jpeg": {}}}},
    dependencies=[allow(Role.viewer)],
)
def face_chip(face_id: FaceId, gallery: GalleryDep) -> Response:
    """The aligned face crop the model saw, as JPEG."""
    return Response(content=gallery.chip_jpeg(face_id), media_type="image/jpeg")


@router.delete(
    "/{face_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404),
    dependencies=[allow(Role.enroller)],
)
def delete_face(face_id: FaceId, gallery: GalleryDep, caller: CallerDep) -> Response:
    gallery.delete_face(face_id, by=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
