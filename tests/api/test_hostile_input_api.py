"""Hostile input is refused with `{detail, code}`, stores nothing, and leaves connections usable.

Ids and offsets out of range or oddly spelled, subject fields that are not
strict text or JSON, bodies that are too large or stall, crashes inside a
route: through `TestClient` where the app alone decides, and through a real
uvicorn server where the connection is what is tested.
"""

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.access.keys import create_key
from app.access.roles import Role
from app.api.params import MAX_OFFSET, last_page
from app.audit.actor import SYSTEM
from app.config import Settings
from app.main import create_app
from app.vision.embedder import FaceEmbedder
from app.web.gallery_pages import PAGE_SIZE

from access_support import CASE, TEST_RATE_LIMITS, authorize
from live_server import Address, RawConnection, request_head, serve

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
UPLOAD_LIMIT = 300_000
REQUEST_LIMIT = 1024 * 1024
READ_TIMEOUT_S = 1.0
INT64_MAX = 2**63 - 1


def settings_for(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        models_dir=REPO_MODELS,
        device="cpu",
        max_upload_bytes=UPLOAD_LIMIT,
        max_request_bytes=REQUEST_LIMIT,
        body_read_timeout_s=READ_TIMEOUT_S,
        rate_limits=TEST_RATE_LIMITS,
    )


@pytest.fixture(scope="module")
def photo(faces_dir: Path) -> bytes:
    return (faces_dir / "lfw_mini" / "Monica_Seles" / "Monica_Seles_0001.jpg").read_bytes()


@pytest.fixture(scope="module")
def client(
    embedder: FaceEmbedder, tmp_path_factory: pytest.TempPathFactory, photo: bytes
) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path_factory.mktemp("hostile")), embedder=embedder)
    with TestClient(app) as client:
        authorize(client)
        subject = client.post("/subjects", json={"display_name": "Monica Seles"}).json()["id"]
        files = [("files", ("monica.jpg", photo, "image/jpeg"))]
        assert client.post(f"/subjects/{subject}/photos", files=files).json()["enrolled"] == 1
        yield client


def crash() -> None:
    raise RuntimeError("a bug in a route")


@pytest.fixture(scope="module")
def served_app(embedder: FaceEmbedder, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The real app, with one extra route that crashes (and that declares no access, since
    it is added after the app was checked)."""
    app: FastAPI = create_app(settings_for(tmp_path_factory.mktemp("live")), embedder=embedder)
    app.add_api_route("/crash", crash)
    return app


@pytest.fixture(scope="module")
def server(served_app: FastAPI) -> Iterator[Address]:
    """`served_app` behind uvicorn."""
    with serve(served_app) as address:
        yield address


@pytest.fixture(scope="module")
def server_auth(server: Address, served_app: FastAPI) -> dict[str, str]:
    """The header of an admin key of the served app, as `request_head` takes it."""
    key = create_key(served_app.state.sessions, name="raw", role=Role.admin, by=SYSTEM).key
    return {"authorization": f"Bearer {key}"}


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["detail"], body


def subjects(client: TestClient) -> Any:
    listing = client.get("/subjects", params={"limit": 200})
    assert listing.status_code == 200
    return listing.json()


# Unhandled errors


def test_a_crash_is_a_json_500_and_the_connection_stays_usable(
    server: Address, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), RawConnection(server) as connection:
        connection.send(request_head("GET", "/crash"))
        crashed = connection.read_response()
        connection.send(request_head("GET", "/health/live"))
        after = connection.read_response()
    assert crashed.status == 500
    assert json.loads(crashed.body) == {"detail": "internal error", "code": "internal_error"}
    assert crashed.headers.get("connection") != "close"
    assert (after.status, json.loads(after.body)) == (200, {"status": "live"})
    assert "internal error answering GET /crash" in caplog.text
    assert "RuntimeError: a bug in a route" in caplog.text


# Ids, offsets and pages

ODD_SPELLINGS = ["+1", " 1", "1 ", "01", "1.0", "0x1", "1_0", "1e0", "-1", "١"]


@pytest.mark.parametrize("spelling", [*ODD_SPELLINGS, "0"])
def test_ids_must_be_plain_decimal(client: TestClient, spelling: str) -> None:
    before = subjects(client)
    assert_refused(client.delete(f"/subjects/{spelling}"), 422, "invalid_request")
    assert_refused(client.get(f"/faces/{spelling}/chip"), 422, "invalid_request")
    assert_refused(client.get(f"/admin/jobs/{spelling}"), 422, "invalid_request")
    verify = client.post("/verify", data={"first_face_id": spelling, "second_face_id": "1", **CASE})
    assert_refused(verify, 422, "invalid_request")
    assert_refused(client.get("/enroll", params={"subject": spelling}), 422, "invalid_request")
    assert subjects(client) == before
    assert client.get("/subjects/1").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/subjects/{id}",
        "/subjects/{id}/faces",
        "/faces/{id}/chip",
        "/admin/jobs/{id}",
        "/gallery/{id}",
    ],
)
def test_ids_beyond_64_bits_are_refused_and_the_largest_is_merely_unknown(
    client: TestClient, path: str
) -> None:
    assert_refused(client.get(path.format(id=INT64_MAX + 1)), 422, "invalid_request")
    assert client.get(path.format(id=INT64_MAX)).status_code == 404


def test_face_ids_in_forms_are_bounded(client: TestClient) -> None:
    too_large = {"first_face_id": str(INT64_MAX + 1), "second_face_id": "1", **CASE}
    assert_refused(client.post("/verify", data=too_large), 422, "invalid_request")
    largest = {"first_face_id": str(INT64_MAX), "second_face_id": "1", **CASE}
    assert_refused(client.post("/verify", data=largest), 404, "face_not_found")


def test_offsets_cannot_overflow(client: TestClient) -> None:
    for offset in (2**63, INT64_MAX, MAX_OFFSET + 1, *ODD_SPELLINGS):
        response = client.get("/subjects", params={"offset": offset, "limit": 200})
        assert_refused(response, 422, "invalid_request")
    furthest = client.get("/subjects", params={"offset": MAX_OFFSET, "limit": 200})
    assert furthest.status_code == 200 and furthest.json()["items"] == []


def test_gallery_pages_cannot_overflow(client: TestClient) -> None:
    assert client.get("/gallery", params={"page": 2**61}).status_code == 422
    assert client.get("/gallery", params={"page": "+2"}).status_code == 422
    assert client.get("/gallery", params={"page": last_page(PAGE_SIZE)}).status_code == 200


# Subject fields


def deep(levels: int) -> Any:
    """`levels` containers nested: a dict holding lists."""
    value: Any = "bottom"
    for _ in range(levels - 1):
        value = [value]
    return {"nested": value}


def raw(value: Any) -> bytes:
    """JSON as a client with `ensure_ascii` sends it: lone surrogates become `\\udXXX`."""
    return json.dumps(value, ensure_ascii=True).encode()


BAD_FIELDS = {
    "surrogate in a details value": {"details": {"note": "\ud83d"}},
    "surrogate in a details key": {"details": {"\udc00": 1}},
    "surrogate deep in details": {"details": {"a": [{"b": ["ok", "\ud800"]}]}},
    "NUL in a details value": {"details": {"note": "a\x00b"}},
    "NUL in a details key": {"details": {"a\x00": 1}},
    "details nested 33 deep": {"details": deep(33)},
    "details over 64 KiB": {"details": {"note": "x" * 65_536}},
    "surrogate in the name": {"display_name": "Ada \ud83d"},
    "NUL in the name": {"display_name": "Ada\x00"},
    "newline in the name": {"display_name": "Ada\nLovelace"},
    "leading space in the name": {"display_name": " Ada"},
    "trailing ideographic space in the name": {"display_name": "Ada\u3000"},
    "surrogate in the external id": {"external_id": "case-\udfff"},
    "tab in the external id": {"external_id": "case\t17"},
    "trailing space in the external id": {"external_id": "case-17 "},
}
BAD_BODIES = {
    "NaN in details": b'"details": {"x": NaN}',
    "Infinity in details": b'"details": {"x": -Infinity}',
    "number too large for a float": b'"details": {"x": 1e400}',
    "integer too long to read": b'"details": {"x": ' + b"1" * 5000 + b"}",
    "nesting too deep to parse": b'"details": ' + b"[" * 100_000 + b"]" * 100_000,
    "bytes that are not UTF-8": b'"external_id": "\xff\xfe"',
}


def create_body(case: str) -> bytes:
    if case in BAD_FIELDS:
        return raw({"display_name": "Ada", **BAD_FIELDS[case]})
    return b'{"display_name": "Ada", ' + BAD_BODIES[case] + b"}"


def update_body(case: str) -> bytes:
    if case in BAD_FIELDS:
        return raw(BAD_FIELDS[case])
    return b"{" + BAD_BODIES[case] + b"}"


CASES = [*BAD_FIELDS, *BAD_BODIES]
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("case", CASES)
def test_bad_subject_fields_create_nothing(client: TestClient, case: str) -> None:
    before = subjects(client)
    response = client.post("/subjects", content=create_body(case), headers=JSON)
    assert_refused(response, 422, "invalid_request")
    assert subjects(client) == before


@pytest.mark.parametrize("case", CASES)
def test_bad_subject_fields_change_nothing(client: TestClient, case: str) -> None:
    created = client.post(
        "/subjects", json={"display_name": "Grace", "external_id": f"g-{case}", "details": {}}
    )
    subject = created.json()
    response = client.patch(f"/subjects/{subject['id']}", content=update_body(case), headers=JSON)
    assert_refused(response, 422, "invalid_request")
    assert client.get(f"/subjects/{subject['id']}").json() == subject
    assert client.delete(f"/subjects/{subject['id']}").status_code == 204


def test_strict_fields_still_take_what_is_valid(client: TestClient) -> None:
    body = {
        "display_name": "Zoë 😀 Ng",
        "external_id": "case 17/zoë",
        "details": {"nested": deep(32)["nested"], "emoji": "😀", "ratio": 0.5, "none": None},
    }
    created = client.post("/subjects", content=raw(body), headers=JSON)
    assert created.status_code == 201, created.text
    assert {key: created.json()[key] for key in body} == body
    assert client.get(f"/subjects/{created.json()['id']}").json()["details"] == body["details"]


# Request bodies


def test_a_file_over_the_upload_limit_is_upload_too_large(client: TestClient) -> None:
    image = ("big.jpg", b"\xff" * (UPLOAD_LIMIT + 1), "image/jpeg")
    probe = client.post("/probe", files={"image": image}, data=CASE)
    assert_refused(probe, 413, "upload_too_large")


def test_a_request_over_the_request_limit_is_request_too_large(client: TestClient) -> None:
    before = subjects(client)
    files = [("files", (f"{n}.jpg", b"\xff" * UPLOAD_LIMIT, "image/jpeg")) for n in range(4)]
    assert_refused(client.post("/subjects/1/photos", files=files), 413, "request_too_large")
    assert subjects(client) == before


def test_a_declared_10_gib_body_is_refused_before_it_is_sent(
    server: Address, server_auth: dict[str, str]
) -> None:
    head = request_head(
        "POST",
        "/probe",
        content_type="multipart/form-data; boundary=x",
        content_length="10737418240",
        **server_auth,
    )
    with RawConnection(server, timeout=10) as connection:
        connection.send(head)
        response = connection.read_response()
        assert response.status == 413 and response.headers["connection"] == "close"
        assert json.loads(response.body)["code"] == "request_too_large"
        assert connection.closed_by_server()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    server: Address, server_auth: dict[str, str]
) -> None:
    """The body is never finished: only counting while it streams can refuse it."""
    head = request_head(
        "POST",
        "/probe",
        content_type="multipart/form-data; boundary=x",
        transfer_encoding="chunked",
        **server_auth,
    )
    part = b'--x\r\ncontent-disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
    piece = b"\xff" * 65_536
    with RawConnection(server, timeout=10) as connection:
        connection.send(head + chunk(part))
        sent = len(part)
        while sent <= REQUEST_LIMIT and not connection.has_data():
            connection.send(chunk(piece))
            sent += len(piece)
        assert connection.has_data(wait=10), "no answer to an oversized body"
        response = connection.read_response()
    assert response.status == 413
    assert json.loads(response.body)["code"] == "request_too_large"


def test_a_stalled_body_is_answered_408_and_closed(
    server: Address, server_auth: dict[str, str]
) -> None:
    head = request_head(
        "POST", "/subjects", content_type="application/json", content_length="100", **server_auth
    )
    with RawConnection(server, timeout=READ_TIMEOUT_S + 10) as connection:
        started = time.monotonic()
        connection.send(head + b'{"display_name": ')
        response = connection.read_response()
        waited = time.monotonic() - started
        assert response.status == 408 and response.headers["connection"] == "close"
        assert json.loads(response.body)["code"] == "request_timeout"
        assert connection.closed_by_server()
    assert READ_TIMEOUT_S * 0.9 <= waited <= READ_TIMEOUT_S + 5


def test_a_slow_but_steady_body_is_taken(server: Address, server_auth: dict[str, str]) -> None:
    """The timeout is between two parts of a body, not for all of it."""
    body = json.dumps({"display_name": "Slow Sam"}).encode()
    head = request_head(
        "POST",
        "/subjects",
        content_type="application/json",
        content_length=str(len(body)),
        **server_auth,
    )
    with RawConnection(server) as connection:
        connection.send(head)
        for byte in range(len(body)):
            time.sleep(READ_TIMEOUT_S / 10)
            connection.send(body[byte : byte + 1])
        response = connection.read_response()
    assert response.status == 201, response.body


# Method not allowed


def test_405_says_which_methods_are_allowed(client: TestClient) -> None:
    for method, path, allowed in [
        ("PUT", "/subjects", "GET, POST"),
        ("POST", "/subjects/1", "DELETE, GET, PATCH"),
        ("DELETE", "/health/live", "GET"),
    ]:
        response = client.request(method, path)
        assert_refused(response, 405, "method_not_allowed")
        assert response.headers["allow"] == allowed
