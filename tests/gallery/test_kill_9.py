"""kill -9 of a real server in the middle of enrollments and of reindexes, three rounds each.

After every restart: each enrollment that was answered is still there and
searchable, no file lies without a row, no job is left `running`, and the
index holds exactly the faces the database holds. Slow (each round starts a
service); `.ci/run` runs it after the default suite.
"""

import sqlite3
import threading
import time
from itertools import cycle
from pathlib import Path

import httpx
import pytest

from lineup_processes import Service, lineup_env, start_service, wait_for

pytestmark = pytest.mark.slow
ROUNDS = 3
PEOPLE = ("Emma_Watson", "Heidi_Klum", "Justin_Timberlake", "Monica_Seles", "Sarah_Hughes")


def started(env: dict[str, str], logs: Path, name: str) -> Service:
    logs.mkdir(parents=True, exist_ok=True)
    service = start_service(env, logs / f"{name}.log")
    wait_for(service.is_ready, timeout=240, what=f"{name} ready")
    return service


class Enroller(threading.Thread):
    """Sends one photo after another until the server dies; keeps every answered face."""

    def __init__(self, service: Service, subjects: list[int], photos: "cycle[Path]") -> None:
        super().__init__(name="enroller")
        self.service, self.subjects, self.photos = service, subjects, photos
        self.answered: dict[int, int] = {}  # face id → subject id

    def run(self) -> None:
        with self.service.client() as http:
            for turn in range(10_000):
                subject = self.subjects[turn % len(self.subjects)]
                photo = next(self.photos)
                files = [("files", (photo.name, photo.read_bytes(), "image/jpeg"))]
                try:
                    response = http.post(f"/subjects/{subject}/photos?face=largest", files=files)
                except httpx.TransportError:
                    return  # killed
                for outcome in response.json()["photos"]:
                    if outcome["status"] == "enrolled":
                        self.answered[outcome["face"]["id"]] = subject


def assert_consistent(service: Service, data: Path) -> dict[str, int]:
    stats = service.get("/stats")
    assert stats["faces"] == stats["index_size"], stats
    assert len(list((data / "photos").iterdir())) == stats["photos"]
    assert len(list((data / "chips").iterdir())) == stats["faces"]
    jobs = service.get("/admin/jobs")
    assert [job for job in jobs if job["status"] == "running"] == []
    return stats


def test_kill_9_during_enrollments_and_reindexes(tmp_path: Path, faces_dir: Path) -> None:
    data, logs = tmp_path / "data", tmp_path / "logs"
    env = lineup_env(data)
    photos = cycle(
        faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"
        for number in range(1, 6)
        for person in PEOPLE
    )
    service = started(env, logs, "first")
    subjects = [
        service.get_json_post("/subjects", {"display_name": person}) for person in PEOPLE[:3]
    ]
    answered: dict[int, int] = {}
    for round_number in range(ROUNDS):
        enroller = Enroller(service, subjects, photos)
        enroller.start()
        wanted = 2 + round_number
        wait_for(
            lambda enroller=enroller, wanted=wanted: len(enroller.answered) >= wanted,
            timeout=300,
            what="enrollments answered",
        )
        service.stop(kill=True)
        enroller.join(timeout=120)
        answered.update(enroller.answered)
        service = started(env, logs, f"enroll-{round_number}")
        assert_consistent(service, data)
        for face_id, subject in answered.items():
            faces = service.get(f"/subjects/{subject}/faces")
            assert face_id in {face["id"] for face in faces}

    for round_number in range(ROUNDS):
        active = service.get("/stats")["model_version"]["backbone"]
        target = "dlib-resnet" if active == "dlib-resnet-cctv" else "dlib-resnet-cctv"
        job = service.get_json_post("/admin/reindex", {"backbone": target}, key="id")
        wait_for(
            lambda service=service, job=job: (
                service.get(f"/admin/jobs/{job}")["status"] in ("running", "succeeded")
            ),
            timeout=120,
            what="the reindex running",
        )
        time.sleep(0.5 * round_number)  # each round kills it a little later
        service.stop(kill=True)
        service = started(env, logs, f"reindex-{round_number}")
        stats = assert_consistent(service, data)
        assert service.get(f"/admin/jobs/{job}")["status"] in ("failed", "succeeded")
        with sqlite3.connect(data / "lineup.db") as db:
            stray = db.execute(
                "SELECT count(*) FROM embeddings e JOIN model_versions v"
                " ON v.id = e.model_version_id WHERE NOT v.active AND e.id NOT IN"
                " (SELECT min(id) FROM embeddings GROUP BY face_id)"
            ).fetchone()[0]
        assert stray == 0, "a killed reindex left its rows"
        assert stats["faces"] >= len(answered)
    service.stop()
