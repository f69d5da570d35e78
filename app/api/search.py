"""`/probe` and `/verify`: who might this be, and are these two the same person?"""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile

from app.access.roles import Role
from app.api.auth import CallerDep, allow
from app.api.cases import search_case
from app.api.deps import GalleryDep, SettingsDep
from app.api.errors import BadRequest, error_responses, router_errors
from app.api.params import FaceIdField
from app.api.uploads import read_limited
from app.audit.actor import Case
from app.schemas import ProbeResult, VerifyResult

router = APIRouter(tags=["search"], responses=router_errors(503))
IMAGE_ERRORS = error_responses(400, 413, 415, 422)
Threshold = Annotated[
    float | None,
    Query(ge=-1.0, le=1.0, description="Cosine similarity for a match; default: calibrated."),
]
CaseDep = Annotated[Case, Depends(search_case)]


@router.post("/probe", responses=IMAGE_ERRORS, dependencies=[allow(Role.investigator)])
def probe(
    gallery: GalleryDep,
    settings: SettingsDep,
    caller: CallerDep,
    case: CaseDep,
    image: Annotated[UploadFile, File(description="The probe photo (CCTV still, doorbell...).")],
    k: Annotated[int | None, Query(ge=1, le=100, description="Candidates per face.")] = None,
    threshold: Threshold = None,
) -> ProbeResult:
    """Every face in the photo with its top-k gallery subjects and a match / no_match decision.

    Candidates are investigative leads for a person to review, never an identification.
    The search, its case and its answer are recorded in the audit trail.
    """
    data = read_limited(image, limit=settings.max_upload_bytes)
    return gallery.probe(
        data, k=k or settings.default_k, threshold=threshold, by=caller.actor, case=case
    )


@router.post(
    "/verify",
    responses={**IMAGE_ERRORS, **error_responses(404, 409)},
    dependencies=[allow(Role.investigator)],
)
def verify(
    gallery: GalleryDep,
    settings: SettingsDep,
    caller: CallerDep,
    case: CaseDep,
    first: Annotated[UploadFile | None, File(description="First photo.")] = None,
    second: Annotated[UploadFile | None, File(description="Second photo.")] = None,
    first_face_id: FaceIdField = None,
    second_face_id: FaceIdField = None,
    threshold: Threshold = None,
) -> VerifyResult:
    """Similarity of two faces: two photos (largest face of each) or two enrolled face ids."""
    if first is not None and second is not None and first_face_id is second_face_id is None:
        limit = settings.max_upload_bytes
        return gallery.verify_photos(
            read_limited(first, limit=limit),
            read_limited(second, limit=limit),
            threshold=threshold,
            by=caller.actor,
            case=case,
        )
    if first_face_id is not None and second_face_id is not None and first is second is None:
        return gallery.verify_faces(
            first_face_id, second_face_id, threshold=threshold, by=caller.actor, case=case
        )
    raise BadRequest("send either two photos (first, second) or two face ids, not a mix")
