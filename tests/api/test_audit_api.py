"""The audit trail through HTTP: one record per audited action, with who, when, from
where, for which case and what was answered; reading it back; finding tampering.

Most tests share one app and tell their records apart by the id the trail had
before they acted. Tests that break or trim the trail get an app of their own.
"""

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import delete, func, select, update

from app.access.roles import Role
from app.audit.query import CSV_COLUMNS
from app.db.engine import session_scope
from app.db.tables import AuditEvent

from access_support import bearer, new_key

Record = dict[str, Any]


@dataclass(frozen=True)
class Holder:
    """A named key of one role, as its holder sends it."""

    name: str
    role: Role
    headers: dict[str, str]


def holder(client: TestClient, role: Role, name: str) -> Holder:
    return Holder(name=name, role=role, headers=bearer(new_key(client, role, name=name)))


def photo(faces_dir: Path, person: str, number: int) -> Path:
    return faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def newest_id(client: TestClient, admin: Holder) -> int:
    items = client.get("/admin/audit", params={"limit": 1}, headers=admin.headers).json()["items"]
    return int(items[0]["id"]) if items else 0


def records_after(client: TestClient, admin: Holder, last_id: int) -> list[Record]:
    """The records written after record `last_id`, oldest first."""
    page = client.get("/admin/audit", params={"limit": 200}, headers=admin.headers).json()
    return sorted((r for r in page["items"] if r["id"] > last_id), key=lambda r: r["id"])


@dataclass
class Trail:
    """The shared app's trail, read by an admin, and the keys that act on it."""

    client: TestClient
    admin: Holder
    enroller: Holder
    investigator: Holder

    def act(self, by: Holder, method: str, path: str, **sent: Any) -> tuple[Response, list[Record]]:
        """Send one request as `by`; its answer and the records it wrote."""
        before = newest_id(self.client, self.admin)
        headers = {**by.headers, **sent.pop("headers", {})}
        response = self.client.request(method, path, headers=headers, **sent)
        return response, records_after(self.client, self.admin, before)

    def one(self, by: Holder, method: str, path: str, *, action: str, **sent: Any) -> Record:
        """Send one request that must succeed and write exactly one `action` record."""
        started = datetime.now(UTC)
        response, written = self.act(by, method, path, **sent)
        assert response.status_code < 300, response.text
        assert [r["action"] for r in written] == [action]
        assert_written_by(written[0], by, response, started)
        return written[0]


def assert_written_by(record: Record, by: Holder, response: Response, started: datetime) -> None:
    """The record names the key, its role, the client, the request and the time."""
    assert (record["key_name"], record["role"], record["client"]) == (
        by.name,
        by.role.value,
        "testclient",
    )
    assert record["request_id"] == response.headers["X-Request-ID"]
    assert record["outcome"] == "ok"
    at = datetime.fromisoformat(record["at"])
    assert started - timedelta(seconds=1) <= at <= datetime.now(UTC)


@pytest.fixture(scope="module")
def trail(
    open_client: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trail]:
    with open_client(tmp_path_factory.mktemp("audit") / "data") as client:
        yield Trail(
            client=client,
            admin=holder(client, Role.admin, "ada-admin"),
            enroller=holder(client, Role.enroller, "kim-enroller"),
            investigator=holder(client, Role.investigator, "ivy-investigator"),
        )


def create_subject(trail: Trail, name: str, **fields: Any) -> int:
    body = {"display_name": name, **fields}
    response = trail.client.post("/subjects", json=body, headers=trail.enroller.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def enroll(trail: Trail, subject_id: int, paths: list[Path]) -> tuple[Response, list[Record]]:
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]
    return trail.act(
        trail.enroller,
        "POST",
        f"/subjects/{subject_id}/photos",
        files=files,
        params={"face": "largest"},
    )


def enrolled_faces(trail: Trail, subject_id: int, paths: list[Path]) -> list[int]:
    response, _ = enroll(trail, subject_id, paths)
    outcomes = response.json()["photos"]
    assert [o["status"] for o in outcomes] == ["enrolled"] * len(paths), outcomes
    return [int(o["face"]["id"]) for o in outcomes]


def model_version_id(trail: Trail) -> int:
    stats = trail.client.get("/stats", headers=trail.admin.headers).json()
    return int(stats["model_version"]["id"])


def test_subject_changes_are_each_one_record_without_the_persons_name(trail: Trail) -> None:
    private = {"display_name": "Ada Quill-Ferro", "details": {"note": "seen at the docks"}}
    created = trail.one(
        trail.enroller,
        "POST",
        "/subjects",
        action="subject_create",
        json={**private, "external_id": "PNC-0042"},
        headers={"X-Request-ID": "desk-7.request-1"},
    )
    subject_id = created["subject_ids"][0]
    assert created["request_id"] == "desk-7.request-1"
    assert created["details"] == {
        "subject_id": subject_id,
        "external_id": "PNC-0042",
        "retain_until": None,
    }

    patched = trail.one(
        trail.enroller,
        "PATCH",
        f"/subjects/{subject_id}",
        action="subject_update",
        json={"external_id": "PNC-0043", "display_name": "Ada Ferro"},
    )
    assert patched["subject_ids"] == [subject_id]
    assert patched["details"]["fields"] == ["display_name", "external_id"]
    assert patched["details"]["external_id"] == "PNC-0043"

    deleted = trail.one(trail.admin, "DELETE", f"/subjects/{subject_id}", action="subject_delete")
    assert deleted["subject_ids"] == [subject_id]
    assert (deleted["details"]["faces"], deleted["details"]["photos"]) == (0, 0)
    for record in (created, patched, deleted):
        text = str(record)
        assert "Quill" not in text and "Ada Ferro" not in text and "docks" not in text
        assert (record["case_reference"], record["model_version_id"]) == (None, None)


def test_each_enrolled_photo_is_one_record_with_its_hash(trail: Trail, faces_dir: Path) -> None:
    subject_id = create_subject(trail, "Heidi Klum")
    paths = [photo(faces_dir, "Heidi_Klum", n) for n in (1, 2)]
    started = datetime.now(UTC)
    response, written = enroll(trail, subject_id, paths)
    assert response.status_code == 200, response.text
    faces = [outcome["face"]["id"] for outcome in response.json()["photos"]]

    assert [r["action"] for r in written] == ["enroll_photo", "enroll_photo"]
    for record, path, face_id in zip(written, paths, faces, strict=True):
        assert_written_by(record, trail.enroller, response, started)
        assert record["subject_ids"] == [subject_id]
        assert record["details"] == {
            "subject_id": subject_id,
            "image_sha256": sha256(path),
            "status": "enrolled",
            "reason": None,
            "face_id": face_id,
        }
        assert record["model_version_id"] == model_version_id(trail)
        assert path.name not in str(record)  # file names often name the person


def test_a_face_deletion_is_one_record(trail: Trail, faces_dir: Path) -> None:
    subject_id = create_subject(trail, "Monica Seles")
    [face_id] = enrolled_faces(trail, subject_id, [photo(faces_dir, "Monica_Seles", 1)])
    record = trail.one(trail.enroller, "DELETE", f"/faces/{face_id}", action="face_delete")
    assert record["subject_ids"] == [subject_id]
    assert record["details"] == {"face_id": face_id, "subject_id": subject_id}


def test_a_probe_is_one_record_with_its_case_its_image_hash_and_its_answer(
    trail: Trail, faces_dir: Path
) -> None:
    emma = create_subject(trail, "Emma Watson")
    enrolled_faces(trail, emma, [photo(faces_dir, "Emma_Watson", n) for n in (1, 2)])
    probed = photo(faces_dir, "Emma_Watson", 3)
    case = {"case_reference": "OP-HALYARD/17", "purpose": "doorbell still, 2 May"}
    started = datetime.now(UTC)
    response, written = trail.act(
        trail.investigator,
        "POST",
        "/probe",
        files={"image": (probed.name, probed.read_bytes(), "image/jpeg")},
        data=case,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [r["action"] for r in written] == ["probe"]
    record = written[0]
    assert_written_by(record, trail.investigator, response, started)
    assert (record["case_reference"], record["purpose"]) == (
        case["case_reference"],
        case["purpose"],
    )
    assert record["model_version_id"] == answer["model_version"]["id"]
    answered = [
        {
            "decision": face["decision"],
            "candidates": [
                {
                    "subject_id": c["subject"]["id"],
                    "face_id": c["face_id"],
                    "similarity": c["similarity"],
                }
                for c in face["candidates"]
            ],
        }
        for face in answer["faces"]
    ]
    assert record["details"] == {
        "image_sha256": [sha256(probed)],
        "k": answer["k"],
        "threshold": answer["threshold"],
        "faces": answered,
    }
    candidates = {c["subject_id"] for face in answered for c in face["candidates"]}
    assert emma in candidates and record["subject_ids"] == sorted(candidates)
    assert any(face["decision"] == "match" for face in answered)


def test_a_search_case_may_come_as_query_parameters(trail: Trail, faces_dir: Path) -> None:
    probed = photo(faces_dir, "Heidi_Klum", 3)
    case = {"case_reference": "OP-KESTREL", "purpose": "cctv"}
    record = trail.one(
        trail.investigator,
        "POST",
        "/probe",
        action="probe",
        files={"image": (probed.name, probed.read_bytes(), "image/jpeg")},
        params=case,
    )
    assert (record["case_reference"], record["purpose"]) == ("OP-KESTREL", "cctv")


@pytest.mark.parametrize("case", [{}, {"purpose": "no case"}, {"case_reference": ""}])
def test_a_search_without_a_case_is_refused_and_not_recorded(
    trail: Trail, faces_dir: Path, case: dict[str, str]
) -> None:
    probed = photo(faces_dir, "Heidi_Klum", 3)
    image = (probed.name, probed.read_bytes(), "image/jpeg")
    for path, files in (
        ("/probe", {"image": image}),
        ("/verify", {"first": image, "second": image}),
    ):
        response, written = trail.act(trail.investigator, "POST", path, files=files, data=case)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "case_reference_required"
        assert written == []


def test_verifying_photos_is_one_record_with_both_hashes(trail: Trail, faces_dir: Path) -> None:
    first, second = (photo(faces_dir, "Heidi_Klum", n) for n in (4, 5))
    files = {
        "first": (first.name, first.read_bytes(), "image/jpeg"),
        "second": (second.name, second.read_bytes(), "image/jpeg"),
    }
    record = trail.one(
        trail.investigator,
        "POST",
        "/verify",
        action="verify",
        files=files,
        data={"case_reference": "OP-KESTREL"},
    )
    assert record["details"]["image_sha256"] == [sha256(first), sha256(second)]
    assert record["details"]["same_person"] is True
    assert record["subject_ids"] == [] and record["model_version_id"] == model_version_id(trail)


def test_verifying_faces_is_one_record_naming_the_faces_and_their_subjects(
    trail: Trail, faces_dir: Path
) -> None:
    tom = create_subject(trail, "Tom Hanks")
    [first, second] = enrolled_faces(trail, tom, [photo(faces_dir, "Tom_Hanks", n) for n in (1, 2)])
    response, written = trail.act(
        trail.investigator,
        "POST",
        "/verify",
        data={"first_face_id": first, "second_face_id": second, "case_reference": "OP-WREN"},
    )
    assert response.status_code == 200, response.text
    [record] = written
    assert record["action"] == "verify" and record["subject_ids"] == [tom]
    assert record["details"] == {
        "face_ids": [first, second],
        "similarity": response.json()["similarity"],
        "threshold": response.json()["threshold"],
        "same_person": response.json()["same_person"],
    }


def test_key_changes_are_recorded_without_the_key(trail: Trail) -> None:
    body = {"name": "joe-viewer", "role": "viewer", "expires_in_days": 30}
    response, written = trail.act(trail.admin, "POST", "/admin/keys", json=body)
    assert response.status_code == 201, response.text
    made = response.json()
    [created] = written
    assert (created["action"], created["key_name"]) == ("key_create", "ada-admin")
    assert created["details"] == {
        "key": "joe-viewer",
        "key_role": "viewer",
        "prefix": made["prefix"],
        "expires_at": created["details"]["expires_at"],
    }
    assert created["details"]["expires_at"].startswith(made["expires_at"][:10])
    assert made["key"] not in str(created)

    revoked = trail.one(trail.admin, "POST", "/admin/keys/joe-viewer/revoke", action="key_revoke")
    assert revoked["details"]["key"] == "joe-viewer"
    again, written = trail.act(trail.admin, "POST", "/admin/keys/joe-viewer/revoke")
    assert again.status_code == 200 and written == []  # nothing changed, nothing recorded


def test_a_job_start_and_cancel_are_each_one_record(trail: Trail) -> None:
    """The job worker is stopped first, so the job stays queued: nothing runs, and the
    cancel always finds it (the test reaches into the app for this alone)."""
    trail.client.app.state.jobs.stop()  # type: ignore[attr-defined]
    refused, written = trail.act(trail.admin, "POST", "/admin/reindex", json={"backbone": "no-net"})
    assert refused.status_code == 422 and written == []

    started = trail.one(
        trail.admin,
        "POST",
        "/admin/reindex",
        action="job_start",
        json={"backbone": "facenet-vggface2"},
    )
    job_id = started["details"]["job_id"]
    assert started["details"] == {
        "job_id": job_id,
        "kind": "reindex",
        "parameters": {"backbone": "facenet-vggface2"},
    }
    cancelled = trail.one(trail.admin, "POST", f"/admin/jobs/{job_id}/cancel", action="job_cancel")
    assert cancelled["details"] == {"job_id": job_id, "kind": "reindex"}
    job = trail.client.get(f"/admin/jobs/{job_id}", headers=trail.admin.headers).json()
    assert job["status"] == "cancelled"


def test_the_trail_is_found_by_action_key_subject_case_and_time(
    trail: Trail, faces_dir: Path
) -> None:
    """ "Who searched for or enrolled this person": a subject's records are its creation,
    its enrollments and every search that returned it as a candidate."""
    sam = holder(trail.client, Role.investigator, "sam-investigator")
    first_id = newest_id(trail.client, trail.admin) + 1
    justin = create_subject(trail, "Justin Timberlake")
    sarah = create_subject(trail, "Sarah Hughes")
    enrolled_faces(trail, justin, [photo(faces_dir, "Justin_Timberlake", 1)])
    enrolled_faces(trail, sarah, [photo(faces_dir, "Sarah_Hughes", 1)])
    probes = {}
    for person, case in (("Justin_Timberlake", "OP-A"), ("Sarah_Hughes", "OP-B")):
        probed = photo(faces_dir, person, 3)  # one face: its one candidate is the person
        probes[person] = trail.one(
            sam,
            "POST",
            "/probe",
            action="probe",
            files={"image": (probed.name, probed.read_bytes(), "image/jpeg")},
            params={"case_reference": case, "k": 1},
        )

    def found(**wanted: Any) -> list[int]:
        page = trail.client.get("/admin/audit", params=wanted, headers=trail.admin.headers)
        assert page.status_code == 200, page.text
        ids = [r["id"] for r in page.json()["items"] if r["id"] >= first_id]
        assert page.json()["total"] >= len(ids)
        return ids

    justin_probe, sarah_probe = probes["Justin_Timberlake"]["id"], probes["Sarah_Hughes"]["id"]
    assert probes["Justin_Timberlake"]["subject_ids"] == [justin]
    assert found(key_name="sam-investigator") == [sarah_probe, justin_probe]  # newest first
    assert found(action="probe", case_reference="OP-B") == [sarah_probe]
    about_justin = found(subject_id=justin)
    assert len(about_justin) == 3 and about_justin[0] == justin_probe  # create, enroll, probe
    assert sarah_probe not in about_justin
    assert found(subject_id=justin, action="enroll_photo") == [about_justin[1]]
    since, until = probes["Justin_Timberlake"]["at"], probes["Sarah_Hughes"]["at"]
    assert found(since=since, until=until) == [justin_probe]  # until is exclusive
    assert found(since=until) == [sarah_probe]
    assert found(action="probe", key_name="nobody") == []


def test_the_trail_is_paged_newest_first_with_its_total(trail: Trail) -> None:
    pat = holder(trail.client, Role.enroller, "pat-enroller")
    made = [
        trail.one(pat, "POST", "/subjects", action="subject_create", json={"display_name": n})
        for n in ("P1", "P2", "P3", "P4", "P5")
    ]
    ids = [record["id"] for record in reversed(made)]
    pages = [
        trail.client.get(
            "/admin/audit",
            params={"key_name": "pat-enroller", "offset": offset, "limit": 2},
            headers=trail.admin.headers,
        ).json()
        for offset in (0, 2, 4)
    ]
    assert [page["total"] for page in pages] == [5, 5, 5]
    assert [[r["id"] for r in page["items"]] for page in pages] == [ids[:2], ids[2:4], ids[4:]]


def test_the_csv_export_has_a_header_a_line_a_record_and_no_formulas(
    trail: Trail, faces_dir: Path
) -> None:
    cal = holder(trail.client, Role.investigator, "cal-investigator")
    lee = create_subject(trail, "Mahathir Mohamad")
    faces = enrolled_faces(trail, lee, [photo(faces_dir, "Mahathir_Mohamad", n) for n in (1, 2)])
    hostile = {"case_reference": '=HYPERLINK("http://evil.example","x")', "purpose": "+1-1"}
    for _ in range(2):
        trail.one(
            cal,
            "POST",
            "/verify",
            action="verify",
            data={"first_face_id": faces[0], "second_face_id": faces[1], **hostile},
        )
    response = trail.client.get(
        "/admin/audit/export.csv",
        params={"key_name": "cal-investigator"},
        headers=trail.admin.headers,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == list(CSV_COLUMNS) and len(rows) == 3
    for row in rows[1:]:
        line = dict(zip(CSV_COLUMNS, row, strict=True))
        assert line["key_name"] == "cal-investigator" and line["action"] == "verify"
        assert line["case_reference"] == "'" + hostile["case_reference"]
        assert line["purpose"] == "'+1-1"
        assert not any(cell[:1] in "=+-@" for cell in row)


@pytest.fixture
def own_trail(
    open_client: Callable[..., Any], tmp_path: Path
) -> Iterator[tuple[TestClient, Callable[..., None]]]:
    """An app of its own with six subject records, and a way to change its trail's rows."""
    with open_client(tmp_path / "data") as client:
        for number in range(6):
            assert client.post("/subjects", json={"display_name": f"S{number}"}).status_code == 201

        def change(statement: Any) -> None:
            with session_scope(client.app.state.sessions) as session:
                session.execute(statement)

        yield client, change


def audit_ids(client: TestClient) -> list[int]:
    with session_scope(client.app.state.sessions) as session:  # type: ignore[attr-defined]
        return list(session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))


def test_an_intact_trail_says_so(own_trail: tuple[TestClient, Callable[..., None]]) -> None:
    client, _ = own_trail
    check = client.get("/admin/audit/verify").json()
    ids = audit_ids(client)
    assert check["intact"] is True and check["broken_at"] is None and check["problem"] is None
    assert (check["checked"], check["head_id"]) == (len(ids), ids[-1])


@pytest.mark.parametrize(
    "tampering",
    ["edited details", "edited key name", "removed middle", "removed last"],
)
def test_tampering_with_the_database_is_found_by_the_check(
    own_trail: tuple[TestClient, Callable[..., None]], tampering: str
) -> None:
    client, change = own_trail
    ids = audit_ids(client)
    middle, last = ids[len(ids) // 2], ids[-1]
    edits = {
        "edited details": (
            update(AuditEvent).where(AuditEvent.id == middle).values(details="{}"),
            middle,
        ),
        "edited key name": (
            update(AuditEvent).where(AuditEvent.id == middle).values(key_name="x"),
            middle,
        ),
        "removed middle": (delete(AuditEvent).where(AuditEvent.id == middle), middle + 1),
        "removed last": (delete(AuditEvent).where(AuditEvent.id == last), last),
    }
    statement, broken_at = edits[tampering]
    change(statement)
    check = client.get("/admin/audit/verify").json()
    assert (check["intact"], check["broken_at"]) == (False, broken_at), check
    assert check["problem"]


def test_trimming_removes_the_oldest_records_and_is_itself_recorded(
    own_trail: tuple[TestClient, Callable[..., None]],
) -> None:
    client, _ = own_trail
    items = client.get("/admin/audit", params={"limit": 100}).json()["items"][::-1]
    before = items[3]["at"]  # records before the fourth go
    refused = client.delete("/admin/audit")
    assert refused.status_code == 422
    trimmed = client.delete("/admin/audit", params={"before": before})
    assert trimmed.status_code == 200 and trimmed.json() == {"removed": 3}

    kept = client.get("/admin/audit", params={"limit": 100}).json()
    assert [r["id"] for r in kept["items"][1:]] == [r["id"] for r in items[3:]][::-1]
    trim = kept["items"][0]
    assert trim["action"] == "audit_trim" and trim["request_id"] == trimmed.headers["X-Request-ID"]
    assert trim["details"]["removed"] == 3 and trim["details"]["anchor_id"] == items[2]["id"]
    check = client.get("/admin/audit/verify").json()
    assert (check["intact"], check["checked"]) == (True, kept["total"])
    with session_scope(client.app.state.sessions) as session:  # type: ignore[attr-defined]
        assert session.scalar(select(func.min(AuditEvent.id))) == items[3]["id"]
