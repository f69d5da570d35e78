"""The gallery/probe story through HTTP, on real photos: enroll, probe, delete, restart."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from access_support import CASE

LFW_PEOPLE_COUNT = 12


def upload(path: Path) -> tuple[str, tuple[str, bytes, str]]:
    return ("files", (path.name, path.read_bytes(), "image/jpeg"))


def probe(client: TestClient, path: Path, **params: Any) -> dict[str, Any]:
    response = client.post(
        "/probe",
        files={"image": (path.name, path.read_bytes(), "image/jpeg")},
        params={**CASE, **params},
    )
    assert response.status_code == 200, response.json()
    body: dict[str, Any] = response.json()
    return body


def lfw_photo(faces_dir: Path, person: str, number: int) -> Path:
    return faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"


def central_face(answer: dict[str, Any]) -> dict[str, Any]:
    """The face nearest the centre of a 250×250 lfw photo."""

    def distance(face: dict[str, Any]) -> float:
        box = face["box"]
        return abs((box["x1"] + box["x2"]) / 2 - 125) + abs((box["y1"] + box["y2"]) / 2 - 125)

    return min(answer["faces"], key=distance)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gallery")


@pytest.fixture(scope="module")
def people(faces_dir: Path) -> list[str]:
    names = sorted(entry.name for entry in (faces_dir / "lfw_mini").iterdir() if entry.is_dir())
    assert len(names) == LFW_PEOPLE_COUNT
    return names


@pytest.fixture(scope="module")
def client(open_client, data_dir: Path, faces_dir: Path, people: list[str]):  # type: ignore[no-untyped-def]
    """A gallery of the 12 lfw_mini people, photos 1–3 each.

    News photos often show a second person beside the subject, so the
    operator enrolls each photo's largest face.
    """
    with open_client(data_dir) as client:
        for person in people:
            created = client.post(
                "/subjects", json={"display_name": person.replace("_", " "), "external_id": person}
            )
            assert created.status_code == 201, created.json()
            photos = [upload(lfw_photo(faces_dir, person, n)) for n in (1, 2, 3)]
            enrolled = client.post(
                f"/subjects/{created.json()['id']}/photos",
                files=photos,
                params={"face": "largest"},
            )
            assert enrolled.status_code == 200
            assert enrolled.json()["enrolled"] == 3, enrolled.json()
        yield client


def test_the_right_subject_ranks_first(
    client: TestClient, faces_dir: Path, people: list[str]
) -> None:
    right = 0
    for person in people:
        for number in (4, 5):
            answer = probe(client, lfw_photo(faces_dir, person, number))
            candidates = central_face(answer)["candidates"]
            right += candidates[0]["subject"]["external_id"] == person
    assert right >= 23


def test_candidates_are_ranked_subjects_with_their_best_face(
    client: TestClient, faces_dir: Path, people: list[str]
) -> None:
    answer = probe(client, lfw_photo(faces_dir, people[0], 4), k=7)
    assert answer["k"] == 7
    assert answer["model_version"]["backbone"] == "dlib-resnet"
    face = central_face(answer)
    candidates = face["candidates"]
    assert [c["rank"] for c in candidates] == list(range(1, 8))
    similarities = [c["similarity"] for c in candidates]
    assert similarities == sorted(similarities, reverse=True)
    assert len({c["subject"]["id"] for c in candidates}) == 7  # one entry per subject
    for candidate in candidates:
        assert candidate["above_threshold"] == (candidate["similarity"] >= answer["threshold"])
    assert face["decision"] == ("match" if candidates[0]["above_threshold"] else "no_match")
    assert len(face["landmarks"]) == 5


def test_a_stranger_gets_no_match(client: TestClient, faces_dir: Path) -> None:
    for path in sorted((faces_dir / "deepface" / "person_01").glob("*.jpg"))[:2]:
        answer = probe(client, path)
        assert answer["faces"], path
        assert all(face["decision"] == "no_match" for face in answer["faces"])


def test_every_face_of_a_group_photo_gets_its_own_candidates(
    client: TestClient, faces_dir: Path
) -> None:
    answer = probe(client, faces_dir / "multi_face" / "selfie-many-people.jpg", k=3)
    assert len(answer["faces"]) == 7
    for face in answer["faces"]:
        assert len(face["candidates"]) == 3
        assert face["decision"] in ("match", "no_match")
    boxes = {tuple(face["box"].values()) for face in answer["faces"]}
    assert len(boxes) == 7


def test_a_lower_threshold_turns_the_best_candidate_into_a_match(
    client: TestClient, faces_dir: Path
) -> None:
    path = faces_dir / "deepface" / "person_01"
    stranger = sorted(path.glob("*.jpg"))[0]
    answer = probe(client, stranger, threshold=-1.0)
    assert answer["threshold"] == -1.0
    assert all(face["decision"] == "match" for face in answer["faces"])


def test_verify_two_photos(client: TestClient, faces_dir: Path, people: list[str]) -> None:
    def verify(first: Path, second: Path) -> dict[str, Any]:
        files = {
            "first": (first.name, first.read_bytes(), "image/jpeg"),
            "second": (second.name, second.read_bytes(), "image/jpeg"),
        }
        response = client.post("/verify", files=files, data=CASE)
        assert response.status_code == 200, response.json()
        body: dict[str, Any] = response.json()
        return body

    same = verify(lfw_photo(faces_dir, people[1], 1), lfw_photo(faces_dir, people[1], 4))
    different = verify(lfw_photo(faces_dir, people[1], 1), lfw_photo(faces_dir, people[2], 1))
    assert same["same_person"] and not different["same_person"]
    assert same["similarity"] > different["similarity"]


def test_verify_two_enrolled_faces(client: TestClient, people: list[str]) -> None:
    subject = client.get("/subjects", params={"q": people[3]}).json()["items"][0]
    faces = client.get(f"/subjects/{subject['id']}/faces").json()
    response = client.post(
        "/verify",
        data={"first_face_id": faces[0]["id"], "second_face_id": faces[1]["id"], **CASE},
    )
    assert response.status_code == 200
    assert response.json()["same_person"] is True


def test_restart_gives_the_same_answers_and_a_lost_index_is_rebuilt(
    client: TestClient,
    open_client,
    data_dir: Path,
    faces_dir: Path,
    people: list[str],  # type: ignore[no-untyped-def]
) -> None:
    probes = [lfw_photo(faces_dir, person, 5) for person in people[:4]]
    before = [probe(client, path) for path in probes]
    client.app.state.gallery.save_index()  # what a clean shutdown does  # type: ignore[attr-defined]
    sidecars = sorted((data_dir / "index").glob("*.json"))
    saved = [path.read_text() for path in sidecars]
    with open_client(data_dir) as restarted:
        assert [probe(restarted, path) for path in probes] == before
    assert [path.read_text() for path in sidecars] == saved  # loaded, not rebuilt
    index_files = list((data_dir / "index").glob("*"))
    assert index_files
    for path in index_files:
        path.unlink()
    with open_client(data_dir) as rebuilt:
        assert rebuilt.get("/stats").json()["index_size"] == LFW_PEOPLE_COUNT * 3
        assert [probe(rebuilt, path) for path in probes] == before
