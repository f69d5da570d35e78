"""What a probe photo may be: a 36-megapixel photo costs bounded memory, and faces too
small to search with are reported, never compared with the gallery."""

import io
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from access_support import CASE
from lineup_processes import Service, lineup_env, start_service, wait_for

START_TIMEOUT_S = 300.0  # importing torch and loading the models on two busy cores
PROBE_TIMEOUT_S = 300.0
# The photo: 6000 × 6000 px (36 MP, under the 40 MP limit), about 1.5 MB as JPEG.
BIG_SIDE = 6000
# Decoding alone holds 6000² × 4 bytes (Pillow keeps RGB in 32-bit pixels), 144 MB; the
# whole probe measured 250 to 285 MB here, against 4.8 GB before detection ran on a
# working copy. 500 MB leaves room for allocator slack on other machines.
PEAK_GROWTH_LIMIT_MB = 500
GREY = (96, 112, 104)

ClientStarter = Callable[..., AbstractContextManager[TestClient]]


def lfw_photo(faces_dir: Path, person: str, number: int) -> Path:
    return faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"


def jpeg(image: Image.Image, *, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def probe(client: TestClient | httpx.Client, data: bytes, **params: Any) -> dict[str, Any]:
    response = client.post(
        "/probe",
        files={"image": ("probe.jpg", data, "image/jpeg")},
        params={**CASE, **params},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def smaller_side(face: dict[str, Any]) -> float:
    box = face["box"]
    return float(min(box["x2"] - box["x1"], box["y2"] - box["y1"]))


# ---- faces too small to search with ----------------------------------------------


@pytest.fixture(scope="module")
def data_dir(
    tmp_path_factory: pytest.TempPathFactory, open_client: ClientStarter, faces_dir: Path
) -> Path:
    """A gallery holding Abdullah Gul (photos 1-3), so a face that were searched would
    get him as a candidate."""
    data_dir = tmp_path_factory.mktemp("gallery")
    with open_client(data_dir) as client:
        created = client.post("/subjects", json={"display_name": "Abdullah Gul"})
        assert created.status_code == 201, created.text
        photos = [
            ("files", (f"{n}.jpg", lfw_photo(faces_dir, "Abdullah_Gul", n).read_bytes()))
            for n in (1, 2, 3)
        ]
        enrolled = client.post(
            f"/subjects/{created.json()['id']}/photos", files=photos, params={"face": "largest"}
        )
        assert enrolled.status_code == 200 and enrolled.json()["enrolled"] == 3, enrolled.text
    return data_dir


@pytest.fixture(scope="module")
def tiny_and_large(faces_dir: Path) -> bytes:
    """A fourth photo of Abdullah Gul at its own size, and beside it the same photo shrunk
    to 36 px, whose face MTCNN still finds (about 14.6 px, probability 1.0) although it is
    under LINEUP_MIN_FACE_SIZE (20): its box regression shrinks the 20 px windows."""
    photo = Image.open(lfw_photo(faces_dir, "Abdullah_Gul", 4)).convert("RGB")
    canvas = Image.new("RGB", (420, 300), GREY)
    canvas.paste(photo, (10, 25))
    canvas.paste(photo.resize((36, 36), Image.Resampling.BOX), (330, 150))
    return jpeg(canvas, quality=95)


def test_a_face_under_the_minimum_is_reported_too_small_and_not_searched(
    open_client: ClientStarter, data_dir: Path, tiny_and_large: bytes
) -> None:
    with open_client(data_dir) as client:
        answer = probe(client, tiny_and_large)
    large, tiny = sorted(answer["faces"], key=smaller_side, reverse=True)
    assert smaller_side(tiny) < 20 <= smaller_side(large)
    assert tiny["detection_probability"] > 0.95  # found for sure: set aside by its size alone
    assert tiny["decision"] == "too_small"
    assert tiny["candidates"] == []
    assert "at least 20 px is needed" in tiny["detail"]
    assert large["decision"] == "match"
    assert large["candidates"][0]["subject"]["display_name"] == "Abdullah Gul"
    assert large["detail"] is None


def test_the_minimum_is_lineup_min_face_size(
    open_client: ClientStarter, data_dir: Path, tiny_and_large: bytes
) -> None:
    """With the minimum lowered under the tiny face's size, the same face is searched."""
    with open_client(data_dir, min_face_size=12) as client:
        answer = probe(client, tiny_and_large)
    tiny = min(answer["faces"], key=smaller_side)
    assert tiny["decision"] in ("match", "no_match")
    assert tiny["candidates"]


# ---- a 36-megapixel photo in a real server process --------------------------------


def memory_mb(pid: int) -> dict[str, int]:
    """The process's resident set now (VmRSS) and at its peak (VmHWM), in MiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0]) // 1024
    return figures


def reset_peak(pid: int) -> None:
    """Set the process's VmHWM back to its VmRSS (Linux's clear_refs, value 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as error:
        pytest.skip(f"cannot reset the server's peak memory here: {error}")


@contextmanager
def lineup_server(data_dir: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], Service]]:
    """`lineup serve` in its own process (so no other test's memory counts); yield it and
    the service once it is ready."""
    service = start_service(lineup_env(data_dir), log)
    try:
        wait_for(service.is_ready, timeout=START_TIMEOUT_S, what="lineup serve to be ready")
        yield service.process, service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def big_photo(faces_dir: Path) -> bytes:
    """A real face photo blown up to 6000 × 6000 px: a face some 2400 px across."""
    photo = Image.open(lfw_photo(faces_dir, "Abdullah_Gul", 1)).convert("RGB")
    data = jpeg(photo.resize((BIG_SIDE, BIG_SIDE), Image.Resampling.BICUBIC))
    assert 1_000_000 < len(data) < 2_000_000
    return data


def test_a_36_megapixel_photo_is_probed_in_bounded_memory(
    tmp_path: Path, faces_dir: Path, big_photo: bytes
) -> None:
    with (
        lineup_server(tmp_path / "data", tmp_path / "serve.log") as (server, service),
        httpx.Client(
            base_url=service.url, timeout=PROBE_TIMEOUT_S, headers=service.headers
        ) as client,
    ):
        # A first, small probe, so that lazily built parts (thread pools, the nets'
        # first runs) do not count as the large photo's.
        probe(client, lfw_photo(faces_dir, "Abdullah_Gul", 2).read_bytes())
        reset_peak(server.pid)
        before = memory_mb(server.pid)["VmRSS"]
        started = time.monotonic()
        answer = probe(client, big_photo)
        seconds = time.monotonic() - started
        peak = memory_mb(server.pid)["VmHWM"]
    growth = peak - before
    print(f"\n6000×6000 probe: {seconds:.1f} s, peak memory +{growth} MiB over {before} MiB")
    assert growth < PEAK_GROWTH_LIMIT_MB
    assert len(answer["faces"]) == 1
    face = answer["faces"][0]
    box = face["box"]
    centre = ((box["x1"] + box["x2"]) / 2, (box["y1"] + box["y2"]) / 2)
    assert abs(centre[0] - BIG_SIDE / 2) < 600 and abs(centre[1] - BIG_SIDE / 2) < 600
    assert smaller_side(face) > 1500  # in the photo's own pixels, not the working copy's
