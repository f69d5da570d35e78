"""Probes in parallel with enrollments and deletions: no errors, no half-stored faces."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from access_support import CASE


@pytest.fixture(scope="module")
def client(open_client, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with open_client(tmp_path_factory.mktemp("concurrency")) as client:
        yield client


def test_probes_enrollments_and_deletes_side_by_side(client: TestClient, faces_dir: Path) -> None:
    lfw = faces_dir / "lfw_mini"
    people = sorted(p.name for p in lfw.iterdir() if p.is_dir())[:6]
    subjects = {
        person: client.post("/subjects", json={"display_name": person}).json()["id"]
        for person in people
    }

    def enroll(person: str) -> int:
        files = [
            ("files", (p.name, p.read_bytes(), "image/jpeg"))
            for p in sorted((lfw / person).glob("*.jpg"))[:3]
        ]
        response = client.post(
            f"/subjects/{subjects[person]}/photos", files=files, params={"face": "largest"}
        )
        return response.status_code

    def probe(path: Path) -> int:
        response = client.post(
            "/probe", files={"image": (path.name, path.read_bytes(), "x")}, data=CASE
        )
        return response.status_code

    probes = [lfw / person / f"{person}_0005.jpg" for person in people] * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        enrolled = pool.map(enroll, people)
        probed = pool.map(probe, probes)
        statuses = list(enrolled) + list(probed)
    assert set(statuses) == {200}

    with ThreadPoolExecutor(max_workers=4) as pool:
        deleted = pool.map(
            lambda p: client.delete(f"/subjects/{subjects[p]}").status_code, people[:3]
        )
        probed = pool.map(probe, probes)
        assert set(deleted) == {204} and set(probed) == {200}

    stats = client.get("/stats").json()
    assert stats["subjects"] == 3
    assert stats["faces"] == stats["index_size"] == 9
    data_dir: Path = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    assert len(list((data_dir / "chips").glob("*.png"))) == 9
    assert len(list((data_dir / "photos").iterdir())) == 9


def test_the_event_loop_answers_while_probes_compute(client: TestClient, faces_dir: Path) -> None:
    """Probes run in worker threads: a liveness check sent after them is not queued behind them."""
    photo = faces_dir / "multi_face" / "selfie-many-people.jpg"
    finished: list[str] = []

    def probe() -> None:
        client.post("/probe", files={"image": (photo.name, photo.read_bytes(), "x")}, data=CASE)
        finished.append("probe")

    def live() -> None:
        assert client.get("/health/live").status_code == 200
        finished.append("live")

    with ThreadPoolExecutor(max_workers=3) as pool:
        pool.submit(probe)
        pool.submit(probe)
        pool.submit(live)
    assert finished[0] == "live"
