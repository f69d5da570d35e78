"""Several real processes over one gallery: two services and a `lineup enroll` beside them.

Each process keeps its own model and index; the change log keeps them all in
step with the database. On SQLite (the default, one data directory) and on a
real PostgreSQL server (one database; each service could be a replica).
"""

import json
from pathlib import Path

import httpx
import pytest

from lineup_processes import (
    Service,
    lineup_env,
    probe_subjects,
    run_cli,
    services,
    subject_tree,
)

FIRST, SECOND = "Emma_Watson", "Heidi_Klum"


def lfw(faces_dir: Path, person: str, number: int) -> Path:
    return faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"


def enroll_through(service: Service, faces_dir: Path, person: str, numbers: range) -> int:
    with service.client() as client:
        created = client.post("/subjects", json={"display_name": person, "external_id": person})
        assert created.status_code == 201, created.text
        subject_id: int = created.json()["id"]
        files = [
            ("files", (f"{n}.jpg", lfw(faces_dir, person, n).read_bytes(), "image/jpeg"))
            for n in numbers
        ]
        enrolled = client.post(f"/subjects/{subject_id}/photos?face=largest", files=files)
        assert enrolled.json()["enrolled"] == len(numbers), enrolled.text
    return subject_id


def assert_in_step(*running: Service) -> None:
    """Every process's index holds exactly the faces the database holds."""
    for service in running:
        stats = service.get("/stats")
        assert stats["faces"] == stats["index_size"], (service.url, stats)
    assert len({service.get("/stats")["faces"] for service in running}) == 1


def every_process_finds_what_any_enrolled(env: dict[str, str], root: Path, faces_dir: Path) -> None:
    with services(env, root / "logs", 2) as (first, second):
        subject_id = enroll_through(first, faces_dir, FIRST, range(1, 3))
        assert probe_subjects(second, lfw(faces_dir, FIRST, 4)) == [(FIRST, "match")]

        tree = subject_tree(root / "tree", faces_dir, {SECOND: range(1, 4)})
        enrolled = run_cli(env, "enroll", str(tree), "--face", "largest")
        assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
        for service in (first, second):
            assert probe_subjects(service, lfw(faces_dir, SECOND, 5)) == [(SECOND, "match")]
        assert_in_step(first, second)

        deleted = httpx.delete(f"{second.url}/subjects/{subject_id}", headers=second.headers)
        assert deleted.status_code == 204
        answer = probe_subjects(first, lfw(faces_dir, FIRST, 4))
        assert FIRST not in {external_id for external_id, _ in answer}
        assert_in_step(first, second)
        faces_left = first.get("/stats")["faces"]
    assert faces_left == 3


def test_services_and_the_cli_share_one_gallery_on_sqlite(tmp_path: Path, faces_dir: Path) -> None:
    env = lineup_env(tmp_path / "data")
    every_process_finds_what_any_enrolled(env, tmp_path, faces_dir)
    # The services stopped after the CLI saved its index: neither, behind it until
    # its last request, wrote an older index over the newer one.
    (sidecar,) = (tmp_path / "data" / "index").glob("*.json")
    assert json.loads(sidecar.read_text())["count"] == 3


@pytest.mark.postgres
def test_services_and_the_cli_share_one_gallery_on_postgres(
    tmp_path: Path, faces_dir: Path, postgres_url: str
) -> None:
    env = lineup_env(tmp_path / "data", database_url=postgres_url)
    every_process_finds_what_any_enrolled(env, tmp_path, faces_dir)


@pytest.mark.postgres
def test_serve_with_two_workers_answers_from_one_gallery(
    tmp_path: Path, faces_dir: Path, postgres_url: str
) -> None:
    """`lineup serve --workers 2`: whichever worker a request reaches, it sees every face."""
    env = lineup_env(tmp_path / "data", database_url=postgres_url)
    with services(env, tmp_path / "logs", 1, "--workers", "2") as (service,):
        enroll_through(service, faces_dir, FIRST, range(1, 3))
        for _ in range(12):  # a new connection each time, so both workers take some
            assert probe_subjects(service, lfw(faces_dir, FIRST, 4)) == [(FIRST, "match")]
            stats = service.get("/stats")
            assert stats["faces"] == stats["index_size"] == 2
