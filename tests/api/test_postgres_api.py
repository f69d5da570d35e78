"""The same service on PostgreSQL: enroll, probe, delete and restart against a real server."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from access_support import CASE

pytestmark = pytest.mark.postgres
PEOPLE = ("Emma_Watson", "Heidi_Klum", "Justin_Timberlake")


@pytest.fixture(scope="module")
def database_url(module_postgres_url: str) -> str:
    return module_postgres_url


def probe_first(client: TestClient, path: Path) -> Any:
    response = client.post(
        "/probe", files={"image": (path.name, path.read_bytes(), "image/jpeg")}, data=CASE
    )
    assert response.status_code == 200, response.json()
    faces = response.json()["faces"]
    largest = max(faces, key=lambda f: f["box"]["x2"] - f["box"]["x1"])
    return largest["candidates"][0]["subject"]["external_id"], largest["decision"]


def test_gallery_on_postgres(
    open_client,  # type: ignore[no-untyped-def]
    database_url: str,
    tmp_path: Path,
    faces_dir: Path,
) -> None:
    lfw = faces_dir / "lfw_mini"
    with open_client(tmp_path, database_url=database_url) as client:
        ids = {}
        for person in PEOPLE:
            ids[person] = client.post(
                "/subjects", json={"display_name": person, "external_id": person}
            ).json()["id"]
            files = [
                ("files", (p.name, p.read_bytes(), "image/jpeg"))
                for p in sorted((lfw / person).glob("*.jpg"))[:3]
            ]
            answer = client.post(
                f"/subjects/{ids[person]}/photos", files=files, params={"face": "largest"}
            )
            assert answer.json()["enrolled"] == 3
        answers = [probe_first(client, lfw / p / f"{p}_0004.jpg") for p in PEOPLE]
        assert [external_id for external_id, _ in answers] == list(PEOPLE)
        assert client.delete(f"/subjects/{ids[PEOPLE[0]]}").status_code == 204
        after_delete = probe_first(client, lfw / PEOPLE[1] / f"{PEOPLE[1]}_0005.jpg")

    with open_client(tmp_path, database_url=database_url) as restarted:
        assert restarted.get("/stats").json()["faces"] == 6
        assert probe_first(restarted, lfw / PEOPLE[1] / f"{PEOPLE[1]}_0005.jpg") == after_delete
