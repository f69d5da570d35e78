"""Bad input gets a 4xx with `{detail, code}`, and the gallery is unchanged afterwards."""

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from access_support import CASE

BYTE_LIMIT = 300_000
PIXEL_LIMIT = 2_000_000


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`×`height`: a decompression bomb's shape."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(data)


def noise_jpeg(side: int) -> bytes:
    """Random pixels: JPEG cannot compress them, so the file size is predictable."""
    pixels = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=100)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lfw(faces_dir: Path) -> Path:
    return faces_dir / "lfw_mini" / "Monica_Seles"


@pytest.fixture(scope="module")
def client(open_client, tmp_path_factory: pytest.TempPathFactory, lfw: Path):  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("bad-input")
    with open_client(data_dir, max_upload_bytes=BYTE_LIMIT, max_pixels=PIXEL_LIMIT) as client:
        subject = client.post("/subjects", json={"display_name": "Monica Seles"}).json()["id"]
        first = lfw / "Monica_Seles_0001.jpg"
        files = [("files", (first.name, first.read_bytes(), "image/jpeg"))]
        assert client.post(f"/subjects/{subject}/photos", files=files).json()["enrolled"] == 1
        yield client


def snapshot(client: TestClient, probe_photo: Path) -> tuple[Any, ...]:
    """Everything a bad request must leave untouched."""
    data_dir: Path = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    files = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file())
    answer = client.post(
        "/probe",
        files={"image": ("p.jpg", probe_photo.read_bytes(), "image/jpeg")},
        data=CASE,
    ).json()
    return client.get("/stats").json(), client.get("/subjects").json(), files, answer


TRUNCATED_JPEG = noise_jpeg(200)[:4000]
OVERSIZED_JPEG = noise_jpeg(600)
assert len(OVERSIZED_JPEG) > BYTE_LIMIT

PROBE_CASES = [
    ("zero bytes", b"", {}, 400, "empty_image"),
    ("not an image", b"%PDF-1.7 not a photo", {}, 415, "unreadable_image"),
    ("truncated", TRUNCATED_JPEG, {}, 400, "truncated_image"),
    ("over the byte limit", OVERSIZED_JPEG, {}, 413, "upload_too_large"),
    ("decompression bomb", png_claiming_size(40_000, 40_000), {}, 413, "image_too_large"),
    ("over the pixel limit", png_claiming_size(2_000, 1_500), {}, 413, "image_too_large"),
    ("k too small", b"x", {"k": 0}, 422, "invalid_request"),
    ("k too large", b"x", {"k": 101}, 422, "invalid_request"),
    ("threshold out of range", b"x", {"threshold": 1.5}, 422, "invalid_request"),
]


@pytest.mark.parametrize(
    ("case", "data", "params", "status", "code"), PROBE_CASES, ids=[c[0] for c in PROBE_CASES]
)
def test_bad_probe_input(
    client: TestClient,
    lfw: Path,
    case: str,
    data: bytes,
    params: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = snapshot(client, lfw / "Monica_Seles_0002.jpg")
    response = client.post(
        "/probe",
        files={"image": ("probe.jpg", data, "image/jpeg")},
        params={**CASE, **params},
    )
    assert response.status_code == status, response.json()
    body = response.json()
    assert body["code"] == code and body["detail"]
    assert snapshot(client, lfw / "Monica_Seles_0002.jpg") == before


ENROLL_CASES = [
    ("zero bytes", b"", "unreadable"),
    ("not an image", b"GIF89a? no", "unreadable"),
    ("truncated", TRUNCATED_JPEG, "unreadable"),
    ("over the byte limit", OVERSIZED_JPEG, "too_large"),
    ("decompression bomb", png_claiming_size(40_000, 40_000), "too_large"),
]


@pytest.mark.parametrize(("case", "data", "reason"), ENROLL_CASES, ids=[c[0] for c in ENROLL_CASES])
def test_bad_photos_are_refused_and_nothing_is_stored(
    client: TestClient, lfw: Path, case: str, data: bytes, reason: str
) -> None:
    before = snapshot(client, lfw / "Monica_Seles_0002.jpg")
    subject = client.get("/subjects").json()["items"][0]["id"]
    response = client.post(
        f"/subjects/{subject}/photos", files=[("files", ("bad.jpg", data, "image/jpeg"))]
    )
    assert response.status_code == 200
    outcome = response.json()["photos"][0]
    assert (outcome["status"], outcome["reason"]) == ("refused", reason)
    assert outcome["detail"]
    assert snapshot(client, lfw / "Monica_Seles_0002.jpg") == before


def test_unknown_subject_and_face(client: TestClient, lfw: Path) -> None:
    before = snapshot(client, lfw / "Monica_Seles_0002.jpg")
    photo = lfw / "Monica_Seles_0003.jpg"
    files = [("files", (photo.name, photo.read_bytes(), "image/jpeg"))]
    for response in (
        client.post("/subjects/9999/photos", files=files),
        client.get("/subjects/9999"),
        client.patch("/subjects/9999", json={"display_name": "x"}),
        client.delete("/subjects/9999"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "subject_not_found"
    assert client.delete("/faces/9999").json()["code"] == "face_not_found"
    assert snapshot(client, lfw / "Monica_Seles_0002.jpg") == before


def test_malformed_requests(client: TestClient) -> None:
    empty_name = client.post("/subjects", json={"display_name": ""})
    assert empty_name.status_code == 422 and empty_name.json()["code"] == "invalid_request"
    unknown_field = client.post("/subjects", json={"display_name": "A", "age": 3})
    assert unknown_field.json()["code"] == "invalid_request"
    mixed = client.post("/verify", data={"first_face_id": 1, **CASE})
    assert mixed.status_code == 400 and mixed.json()["code"] == "bad_request"
    assert client.get("/no-such-page").json()["code"] == "not_found"
