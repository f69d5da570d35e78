"""`/gallery`: subjects with a thumbnail each, searchable and paged; one subject's page.

Pages read through the `Gallery` facade; deleting is done by the page's script
through the JSON API (`DELETE /subjects/{id}`, `DELETE /faces/{id}`), after a
confirmation, so no state-changing form posts exist here.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.access.roles import Role
from app.api.auth import allow_page
from app.api.deps import GalleryDep
from app.api.params import Canonical, SubjectId, last_page
from app.gallery.errors import SubjectNotFound
from app.schemas import SubjectOut
from app.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 24


@dataclass(frozen=True)
class SubjectCard:
    """A subject as the gallery grid shows it: its first face chip is its thumbnail."""

    subject: SubjectOut
    thumbnail_face_id: int | None


@router.get("/", dependencies=[allow_page(Role.viewer)])
def home() -> RedirectResponse:
    return RedirectResponse("/gallery", status_code=303)


@router.get("/gallery", response_class=HTMLResponse, dependencies=[allow_page(Role.viewer)])
def gallery_page(
    request: Request,
    gallery: GalleryDep,
    q: Annotated[str | None, Query(max_length=255)] = None,
    page: Annotated[int, Query(ge=1, le=last_page(PAGE_SIZE)), Canonical] = 1,
) -> HTMLResponse:
    """One page of subjects, filtered by part of the name or the exact external id."""
    query = (q or "").strip() or None
    listing = gallery.list_subjects(query=query, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    thumbnails = gallery.first_face_ids([subject.id for subject in listing.items])
    cards = [SubjectCard(subject, thumbnails.get(subject.id)) for subject in listing.items]
    pages = max(1, -(-listing.total // PAGE_SIZE))
    return render(
        request,
        "gallery.html",
        {
            "cards": cards,
            "query": query or "",
            "page": page,
            "pages": pages,
            "total": listing.total,
            "first": listing.offset + 1,
            "last": listing.offset + len(cards),
        },
    )


@router.get(
    "/gallery/{subject_id}", response_class=HTMLResponse, dependencies=[allow_page(Role.viewer)]
)
def subject_page(request: Request, subject_id: SubjectId, gallery: GalleryDep) -> HTMLResponse:
    """A subject's metadata and every enrolled face chip, each with a delete button."""
    try:
        subject = gallery.get_subject(subject_id)
    except SubjectNotFound as error:
        return render(request, "not_found.html", {"message": str(error)}, status=404)
    faces = gallery.list_faces(subject_id)
    return render(request, "subject.html", {"subject": subject, "faces": faces})
