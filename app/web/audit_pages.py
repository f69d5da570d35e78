"""`/audit`: the audit trail for admins, filtered and paged, with its CSV export and a check.

The page reads the trail itself (`app.audit.query`), as `GET /admin/audit`
does, so its filters mean the same; the CSV link hands the same filters to
`GET /admin/audit/export.csv`. The filter form is a plain GET form whose empty
fields mean "any", and a value that cannot be read is named on the page rather
than refused with a bare 422. Checking the whole chain walks every record, so
it runs only when asked.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from app.access.roles import Role
from app.api.auth import SessionsDep, allow_page
from app.api.params import ID_BOUND, Canonical, last_page
from app.audit.query import AuditFilter, search_trail
from app.audit.trail import Action
from app.audit.verify import TrailCheck, verify_trail
from app.db.engine import session_scope
from app.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
ACTIONS: tuple[str, ...] = get_args(Action)

Text = Annotated[str, Query(max_length=200)]


@dataclass(frozen=True)
class FilterForm:
    """The filter form as typed, and the filter it reads as."""

    typed: dict[str, str]
    wanted: AuditFilter
    problems: list[str] = field(default_factory=list)

    def query(self, **extra: object) -> str:
        """The page's query string with these filters, for paging links."""
        return urlencode({**{k: v for k, v in self.typed.items() if v}, **extra})

    def export_query(self) -> str:
        """The same filters for `GET /admin/audit/export.csv`, times written with their zone."""
        values: dict[str, object] = {
            "action": self.wanted.action,
            "key_name": self.wanted.key_name,
            "subject_id": self.wanted.subject_id,
            "case_reference": self.wanted.case_reference,
            "since": self.wanted.since.isoformat() if self.wanted.since else None,
            "until": self.wanted.until.isoformat() if self.wanted.until else None,
        }
        return urlencode({k: v for k, v in values.items() if v is not None})


@router.get("/audit", response_class=HTMLResponse, dependencies=[allow_page(Role.admin)])
def audit_page(
    request: Request,
    sessions: SessionsDep,
    action: Text = "",
    key_name: Text = "",
    subject_id: Text = "",
    case_reference: Text = "",
    since: Text = "",
    until: Text = "",
    page: Annotated[int, Query(ge=1, le=last_page(PAGE_SIZE)), Canonical] = 1,
    check: bool = False,
) -> HTMLResponse:
    """One page of matching records, newest first; with `check`, whether the trail holds."""
    form = read_filters(
        action=action,
        key_name=key_name,
        subject_id=subject_id,
        case_reference=case_reference,
        since=since,
        until=until,
    )
    items: list[dict[str, Any]] = []
    total, trail_check = 0, None
    with session_scope(sessions) as session:
        if not form.problems:
            offset = (page - 1) * PAGE_SIZE
            items, total = search_trail(session, form.wanted, offset=offset, limit=PAGE_SIZE)
        if check:
            trail_check = verify_trail(session)
    return render(
        request,
        "audit.html",
        {
            "form": form,
            "actions": ACTIONS,
            "items": items,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "first": (page - 1) * PAGE_SIZE + 1,
            "check": trail_check,
            "check_text": describe_check(trail_check) if trail_check else None,
        },
        status=400 if form.problems else 200,
    )


def read_filters(
    *,
    action: str,
    key_name: str,
    subject_id: str,
    case_reference: str,
    since: str,
    until: str,
) -> FilterForm:
    """The filter the form's fields describe; a field that cannot be read is a problem."""
    typed = {
        "action": action.strip(),
        "key_name": key_name.strip(),
        "subject_id": subject_id.strip(),
        "case_reference": case_reference.strip(),
        "since": since.strip(),
        "until": until.strip(),
    }
    problems: list[str] = []
    if typed["action"] and typed["action"] not in ACTIONS:
        problems.append(f"there is no action {typed['action']!r}")
    subject = _subject_id(typed["subject_id"], problems)
    wanted = AuditFilter(
        action=typed["action"] or None,
        key_name=typed["key_name"] or None,
        subject_id=subject,
        case_reference=typed["case_reference"] or None,
        since=_moment(typed["since"], "since", problems),
        until=_moment(typed["until"], "until", problems),
    )
    return FilterForm(typed=typed, wanted=wanted, problems=problems)


def _subject_id(text: str, problems: list[str]) -> int | None:
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) < ID_BOUND:
        problems.append(f"subject id {text!r} is not a subject id (a whole number from 1)")
        return None
    return int(text)


def _moment(text: str, name: str, problems: list[str]) -> datetime | None:
    """A time typed as ISO 8601; one without a zone is UTC, as the trail's times are."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{name} {text!r} is not a time like 2025-01-31T14:00")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def describe_check(check: TrailCheck) -> str:
    """What the check found, in a sentence."""
    if check.intact:
        return f"The trail is intact: {check.checked} records checked, to record {check.head_id}."
    return f"The trail is broken at record {check.broken_at}: {check.problem}."
