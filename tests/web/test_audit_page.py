"""The audit page: the trail filtered and paged, its CSV export with the same filters, and
the check that finds an altered record."""

import csv
import html as markup
import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.access.roles import Role
from app.config import Settings
from app.db.engine import session_scope
from app.db.tables import AuditEvent
from app.main import create_app
from app.vision.embedder import FaceEmbedder

from access_support import authorize, bearer, new_key

MODELS = Path(__file__).resolve().parents[2] / "models"
HOSTILE = "<img src=x onerror=alert(1)>"


def lfw(faces_dir: Path, person: str, number: int) -> Path:
    return faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"


@pytest.fixture(scope="module")
def emma(client: TestClient, faces_dir: Path) -> int:
    """Emma Watson enrolled, then probed for twice under two cases by an investigator."""
    subject = client.post("/subjects", json={"display_name": "Emma Watson"}).json()
    photos = [
        ("files", (f"{n}.jpg", lfw(faces_dir, "Emma_Watson", n).read_bytes())) for n in (1, 2)
    ]
    assert client.post(f"/subjects/{subject['id']}/photos", files=photos).json()["enrolled"] == 2
    investigator = bearer(new_key(client, Role.investigator, name="ivy-investigator"))
    for case, purpose in (("CASE-2024-17", HOSTILE), ("CASE-2024-18", "a lead from CCTV")):
        probe = lfw(faces_dir, "Emma_Watson", 3).read_bytes()
        answer = client.post(
            "/probe",
            files={"image": ("still.jpg", probe)},
            data={"case_reference": case, "purpose": purpose},
            headers=investigator,
        )
        assert answer.status_code == 200
    return int(subject["id"])


def rows(page_html: str) -> list[tuple[str, str]]:
    """Each listed record's (id, action), top to bottom."""
    return re.findall(r'<tr data-record="(\d+)" data-action="([a-z_]+)">', page_html)


def test_the_audit_page_lists_the_trail_newest_first(client: TestClient, emma: int) -> None:
    page = client.get("/audit")
    assert page.status_code == 200
    listed = rows(page.text)
    assert [action for _, action in listed[:2]] == ["probe", "probe"]
    assert [int(record) for record, _ in listed] == sorted(
        (int(record) for record, _ in listed), reverse=True
    )
    assert '<a href="/admin">Admin</a> › Audit trail' in page.text


def test_a_probe_is_found_by_its_case_reference(client: TestClient, emma: int) -> None:
    page = client.get("/audit", params={"case_reference": "CASE-2024-18"}).text
    assert [action for _, action in rows(page)] == ["probe"]
    assert '<span class="case-reference">CASE-2024-18</span>' in page
    assert "ivy-investigator" in page and "a lead from CCTV" in page
    assert f'<a href="/gallery/{emma}">{emma}</a>' in page
    assert 'value="CASE-2024-18"' in page  # the form keeps what was asked


def test_free_text_reaches_the_page_as_text(client: TestClient, emma: int) -> None:
    page = client.get("/audit", params={"case_reference": "CASE-2024-17"}).text
    assert HOSTILE not in page
    assert markup.escape(HOSTILE) in page


def test_filters_by_action_key_and_subject(client: TestClient, emma: int) -> None:
    probes = rows(client.get("/audit", params={"action": "probe"}).text)
    assert len(probes) == 2 and {action for _, action in probes} == {"probe"}
    by_key = rows(client.get("/audit", params={"key_name": "ivy-investigator"}).text)
    assert len(by_key) == 2
    about_emma = {action for _, action in rows(client.get(f"/audit?subject_id={emma}").text)}
    assert {"subject_create", "enroll_photo", "probe"} <= about_emma
    empty = client.get("/audit", params={"action": "", "key_name": "", "subject_id": ""})
    assert empty.status_code == 200 and rows(empty.text)  # empty fields mean "any"


def test_filters_by_time(client: TestClient, emma: int) -> None:
    assert rows(client.get("/audit", params={"until": "2000-01-01T00:00"}).text) == []
    assert "No record matches these filters." in client.get("/audit?until=2000-01-01").text
    since = client.get("/audit", params={"since": "2000-01-01T00:00:00+00:00"}).text
    assert rows(since)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("subject_id", "abc", "subject id &#39;abc&#39; is not a subject id"),
        ("subject_id", "-3", "is not a subject id"),
        ("since", "yesterday", "since &#39;yesterday&#39; is not a time"),
        ("action", "dance", "there is no action &#39;dance&#39;"),
    ],
)
def test_a_filter_that_cannot_be_read_is_named(
    client: TestClient, field: str, value: str, problem: str
) -> None:
    answer = client.get("/audit", params={field: value})
    assert answer.status_code == 400
    assert 'id="audit-problems"' in answer.text and problem in answer.text


def test_the_csv_export_link_carries_the_same_filters(client: TestClient, emma: int) -> None:
    page = client.get(
        "/audit",
        params={"action": "probe", "since": "2000-01-01T00:00", "key_name": "ivy-investigator"},
    ).text
    link = re.search(r'id="audit-export" href="([^"]+)"', page)
    assert link is not None
    href = markup.unescape(link[1])
    assert href.startswith("/admin/audit/export.csv?")
    assert "since=2000-01-01T00%3A00%3A00%2B00%3A00" in href
    exported = client.get(href)
    assert exported.status_code == 200
    records = list(csv.DictReader(io.StringIO(exported.text)))
    assert [record["case_reference"] for record in records] == ["CASE-2024-18", "CASE-2024-17"]


def test_the_trail_pages_keep_their_filters(client: TestClient, emma: int) -> None:
    for number in range(55):
        client.post("/subjects", json={"display_name": f"Walk-in {number:02d}"})
    first = client.get("/audit", params={"action": "subject_create"}).text
    assert len(rows(first)) == 50 and "Page 1 of 2" in first
    assert 'href="/audit?action=subject_create&amp;page=2"' in first
    second = client.get("/audit", params={"action": "subject_create", "page": 2}).text
    assert len(rows(second)) == 6  # 55 walk-ins and Emma
    assert not set(rows(first)) & set(rows(second))


def test_a_viewer_may_not_read_the_trail(client: TestClient) -> None:
    answer = client.get("/audit", headers=bearer(new_key(client, Role.viewer)))
    assert answer.status_code == 403


def test_checking_the_trail_finds_an_altered_record(tmp_path: Path, embedder: FaceEmbedder) -> None:
    settings = Settings(data_dir=tmp_path, models_dir=MODELS, device="cpu")
    with TestClient(create_app(settings, embedder=embedder)) as fresh:
        client = authorize(fresh)
        created = [client.post("/subjects", json={"display_name": f"S{n}"}) for n in range(3)]
        assert all(answer.status_code == 201 for answer in created)
        intact = client.get("/audit", params={"check": "true"}).text
        assert 'data-intact="true"' in intact and "The trail is intact" in intact
        assert 'id="check-result"' not in client.get("/audit").text  # only when asked
        sessions = fresh.app.state.sessions  # type: ignore[attr-defined]
        with session_scope(sessions) as session:
            creations = select(AuditEvent.id).where(AuditEvent.action == "subject_create")
            altered = session.scalars(creations.order_by(AuditEvent.id.desc())).first()
            session.execute(
                update(AuditEvent).where(AuditEvent.id == altered).values(key_name="someone-else")
            )
        broken = client.get("/audit", params={"check": "true"}).text
        assert 'data-intact="false"' in broken
        assert f"The trail is broken at record {altered}" in broken
