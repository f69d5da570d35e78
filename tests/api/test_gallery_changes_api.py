"""Subjects and faces through HTTP: create, list, change, enroll refusals, delete."""

import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from access_support import CASE


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def enroll(client: TestClient, subject_id: int, *files: tuple[str, bytes], **params: Any) -> Any:
    response = client.post(
        f"/subjects/{subject_id}/photos",
        files=[("files", (name, data, "image/jpeg")) for name, data in files],
        params=params,
    )
    assert response.status_code == 200, response.json()
    return response.json()


def new_subject(client: TestClient, name: str, external_id: str | None = None) -> int:
    response = client.post("/subjects", json={"display_name": name, "external_id": external_id})
    assert response.status_code == 201, response.json()
    subject_id: int = response.json()["id"]
    return subject_id


@pytest.fixture(scope="module")
def client(open_client, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with open_client(tmp_path_factory.mktemp("changes")) as client:
        yield client


def test_subject_crud_and_search(client: TestClient) -> None:
    ada = new_subject(client, "Ada Lovelace", "case-17/ada")
    new_subject(client, "Charles Babbage", "case-17/charles")
    duplicate = client.post(
        "/subjects", json={"display_name": "Ada 2", "external_id": "case-17/ada"}
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "duplicate_external_id"

    by_name = client.get("/subjects", params={"q": "lovel"}).json()
    assert [s["id"] for s in by_name["items"]] == [ada] and by_name["total"] == 1
    by_external_id = client.get("/subjects", params={"q": "case-17/charles"}).json()
    assert [s["display_name"] for s in by_external_id["items"]] == ["Charles Babbage"]
    page = client.get("/subjects", params={"limit": 1, "offset": 1}).json()
    assert page["limit"] == 1 and len(page["items"]) == 1 and page["total"] >= 2

    changed = client.patch(f"/subjects/{ada}", json={"details": {"notes": "seen at the mill"}})
    assert changed.status_code == 200
    assert changed.json()["details"] == {"notes": "seen at the mill"}
    assert changed.json()["display_name"] == "Ada Lovelace"  # fields not sent are kept
    assert client.get(f"/subjects/{ada}").json()["details"]["notes"] == "seen at the mill"


def test_enrollment_says_why_each_photo_was_refused(client: TestClient, faces_dir: Path) -> None:
    subject = new_subject(client, "Refusals")
    lfw = faces_dir / "lfw_mini" / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg"
    small = Image.open(lfw).resize((60, 60))
    answer = enroll(
        client,
        subject,
        ("couple.jpg", (faces_dir / "multi_face" / "couple.jpg").read_bytes()),
        ("blank.jpg", jpeg(Image.new("RGB", (200, 200), (30, 90, 160)))),
        ("small.jpg", jpeg(small)),
        ("notes.txt", b"not a photo"),
    )
    reasons = [(p["filename"], p["status"], p["reason"]) for p in answer["photos"]]
    assert reasons == [
        ("couple.jpg", "refused", "multiple_faces"),
        ("blank.jpg", "refused", "no_face"),
        ("small.jpg", "refused", "face_too_small"),
        ("notes.txt", "refused", "unreadable"),
    ]
    assert answer["enrolled"] == 0
    assert client.get(f"/subjects/{subject}/faces").json() == []


def test_largest_face_policy_and_duplicates(client: TestClient, faces_dir: Path) -> None:
    subject = new_subject(client, "Couple photo")
    couple = ("couple.jpg", (faces_dir / "multi_face" / "couple.jpg").read_bytes())
    first = enroll(client, subject, couple, face="largest")
    assert first["photos"][0]["status"] == "enrolled"
    again = enroll(client, subject, couple, face="largest")
    assert again["photos"][0]["status"] == "duplicate"
    assert again["photos"][0]["face"]["id"] == first["photos"][0]["face"]["id"]
    assert len(client.get(f"/subjects/{subject}/faces").json()) == 1


def test_deleting_a_subject_removes_its_faces_and_files(
    client: TestClient, faces_dir: Path
) -> None:
    person = faces_dir / "lfw_mini" / "Tom_Hanks"
    subject = new_subject(client, "Tom Hanks")
    photos = sorted(person.glob("*.jpg"))
    enroll(client, subject, *((p.name, p.read_bytes()) for p in photos[:3]), face="largest")
    face_ids = [face["id"] for face in client.get(f"/subjects/{subject}/faces").json()]
    assert len(face_ids) == 3
    data_dir = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    files_before = {p for p in data_dir.rglob("*") if p.is_file()}

    assert client.delete(f"/subjects/{subject}").status_code == 204

    assert client.get(f"/subjects/{subject}").json()["code"] == "subject_not_found"
    assert client.get(f"/faces/{face_ids[0]}/chip").status_code == 404
    gone = files_before - {p for p in data_dir.rglob("*") if p.is_file()}
    assert len([p for p in gone if p.parent.name in ("photos", "chips")]) == 6
    probe = client.post(
        "/probe",
        files={"image": (photos[4].name, photos[4].read_bytes(), "image/jpeg")},
        params={"k": 100, "threshold": -1, **CASE},
    ).json()
    returned = {c["face_id"] for face in probe["faces"] for c in face["candidates"]}
    assert not returned & set(face_ids)
    assert all(c["subject"]["id"] != subject for face in probe["faces"] for c in face["candidates"])


def test_deleting_one_face(client: TestClient, faces_dir: Path) -> None:
    subject = new_subject(client, "One face less")
    photos = sorted((faces_dir / "lfw_mini" / "Emma_Watson").glob("*.jpg"))[:2]
    enroll(client, subject, *((p.name, p.read_bytes()) for p in photos))
    first, second = client.get(f"/subjects/{subject}/faces").json()
    chip = client.get(f"/faces/{first['id']}/chip")
    assert chip.status_code == 200 and chip.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(chip.content)).size == (150, 150)
    assert client.delete(f"/faces/{first['id']}").status_code == 204
    assert [f["id"] for f in client.get(f"/subjects/{subject}/faces").json()] == [second["id"]]
    assert client.delete(f"/faces/{first['id']}").json()["code"] == "face_not_found"


def test_health_and_stats(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "live"}
    assert client.get("/health/ready").json() == {"status": "ready"}
    stats = client.get("/stats").json()
    assert stats["index_size"] == stats["faces"]
    assert stats["model_version"]["threshold"] is not None
    assert "/probe" in client.get("/openapi.json").json()["paths"]


def test_external_ids_are_unique_whatever_the_case_and_search_is_literal(
    client: TestClient,
) -> None:
    new_subject(client, "Dup One", "dup-1")
    for taken in ("DUP-1", "Dup-1"):
        response = client.post("/subjects", json={"display_name": "again", "external_id": taken})
        assert (response.status_code, response.json()["code"]) == (409, "duplicate_external_id")
    other = new_subject(client, "Other", "dup-2")
    renamed = client.patch(f"/subjects/{other}", json={"external_id": "DUP-1"})
    assert renamed.status_code == 409
    assert client.patch(f"/subjects/{other}", json={"external_id": "Dup-2"}).status_code == 200
    assert [s["display_name"] for s in client.get("/subjects?q=DUP-1").json()["items"]] == [
        "Dup One"
    ]

    new_subject(client, "100% Sure_Name")
    new_subject(client, "100 Percent")
    names = [
        s["display_name"] for s in client.get("/subjects", params={"q": "100%"}).json()["items"]
    ]
    assert names == ["100% Sure_Name"]
    assert client.get("/subjects", params={"q": "e_N"}).json()["total"] == 1
    assert client.get("/subjects", params={"q": "%"}).json()["total"] == 1
