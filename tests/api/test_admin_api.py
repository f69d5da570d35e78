"""Admin jobs through HTTP, and reindexing that switches models under live probes.

A genuinely different model version needs other weights than dlib's; facenet's
InceptionResnetV1 with random weights is one (its template is 160 px, so the
faces are re-aligned from their photos). No model card calibrates it, so most
apps here run on an operator's threshold. The domain function
`app.gallery.reindex.reindex` is called directly where a test needs what HTTP
does not offer: a weights file, small batches, a hook between batches.
"""

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from facenet_pytorch import InceptionResnetV1
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.composition import open_lineup
from app.config import Settings
from app.db.engine import create_engine_for, make_session_factory, session_scope
from app.db.tables import Embedding, Job, ModelVersion
from app.gallery.context import GalleryContext
from app.gallery.enroll import Upload
from app.gallery.errors import OperationCancelled
from app.gallery.probe import version_view
from app.gallery.reindex import ReindexRefused, reindex
from app.jobs.store import INTERRUPTED
from app.main import create_app
from app.schemas import SubjectCreate
from app.vision.backbones.dlib_backbone import default_weights_path
from app.vision.backbones.weights import weights_version
from app.vision.embedder import FaceEmbedder

from access_support import BY, CASE, authorize
from job_polling import wait_for_job

CPU = torch.device("cpu")
THRESHOLD = 0.6
PEOPLE = ("Emma_Watson", "Heidi_Klum", "Tom_Hanks", "Monica_Seles")
Answer = dict[str, Any]


@pytest.fixture(scope="module")
def facenet_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A facenet state dict with random weights: a model version unlike dlib's."""
    torch.manual_seed(0)
    network = InceptionResnetV1(pretrained=None, classify=False).eval()
    path = tmp_path_factory.mktemp("facenet") / "random-vggface2.pt"
    torch.save(network.state_dict(), path)
    return path


def gallery_internals(client: TestClient) -> GalleryContext:
    """The running gallery's private state: these tests hold its locks and read its
    files to force an interleaving that requests alone would only hit by luck."""
    context: GalleryContext = client.app.state.gallery._context  # type: ignore[attr-defined]
    return context


def photo(faces_dir: Path, person: str, number: int) -> Path:
    return faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"


def enroll(
    client: TestClient, faces_dir: Path, person: str, numbers: tuple[int, ...]
) -> dict[int, int]:
    """Enroll photos of `person` (a subject made on first use); {face id: subject id}."""
    found = client.get("/subjects", params={"q": person}).json()["items"]
    subject = (
        found[0]["id"]
        if found
        else client.post("/subjects", json={"display_name": person}).json()["id"]
    )
    files = [
        ("files", (p.name, p.read_bytes(), "image/jpeg"))
        for p in (photo(faces_dir, person, n) for n in numbers)
    ]
    response = client.post(f"/subjects/{subject}/photos", files=files, params={"face": "largest"})
    outcomes = response.json()["photos"]
    assert [o["status"] for o in outcomes] == ["enrolled"] * len(numbers), outcomes
    return {o["face"]["id"]: subject for o in outcomes}


def probe(client: TestClient, path: Path) -> Answer:
    response = client.post(
        "/probe", files={"image": (path.name, path.read_bytes(), "image/jpeg")}, data=CASE
    )
    assert response.status_code == 200, response.json()
    answer: Answer = response.json()
    return answer


def central_face(answer: Answer) -> Answer:
    """The face nearest the centre of a 250×250 lfw photo: its subject."""
    face: Answer = min(answer["faces"], key=lambda f: abs(f["box"]["x1"] + f["box"]["x2"] - 250))
    return face


def wait_until(condition: Callable[[], bool], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def assert_consistent(
    answer: Answer, versions: list[Answer], face_subjects: dict[int, int]
) -> None:
    """One version, one threshold, and candidates that agree with both and with the gallery."""
    assert answer["model_version"] in versions
    assert answer["threshold"] == THRESHOLD
    for face in answer["faces"]:
        candidates = face["candidates"]
        assert [c["rank"] for c in candidates] == list(range(1, len(candidates) + 1))
        for candidate in candidates:
            assert candidate["above_threshold"] == (candidate["similarity"] >= THRESHOLD)
            assert face_subjects[candidate["face_id"]] == candidate["subject"]["id"]
        best_matches = bool(candidates) and candidates[0]["above_threshold"]
        assert face["decision"] == ("match" if best_matches else "no_match")


def test_probes_during_a_reindex_answer_from_one_version_then_from_the_new_one(
    open_client: Callable[..., Any], tmp_path: Path, faces_dir: Path, facenet_weights: Path
) -> None:
    with open_client(tmp_path / "data", match_threshold=THRESHOLD) as client:
        face_subjects: dict[int, int] = {}
        probed_faces: dict[str, int] = {}  # each person's photo 1, which the probes send
        for person in PEOPLE:
            enrolled = enroll(client, faces_dir, person, (1, 2))
            face_subjects.update(enrolled)
            probed_faces[person] = min(enrolled)
        old = client.get("/stats").json()["model_version"]
        unprobed_face = max(face_subjects)  # photo 2 of the last person; probes use photos 1
        context: GalleryContext = gallery_internals(client)
        answers: list[list[Answer]] = [[], [], []]
        statuses: list[int] = []
        stop = threading.Event()

        def keep_probing(slot: int) -> None:
            for turn in range(10_000):
                if stop.is_set():
                    return
                path = photo(faces_dir, PEOPLE[turn % len(PEOPLE)], 1)
                response = client.post(
                    "/probe", files={"image": (path.name, path.read_bytes(), "x")}, data=CASE
                )
                statuses.append(response.status_code)
                if response.status_code == 200:
                    answers[slot].append({**response.json(), "person": PEOPLE[turn % len(PEOPLE)]})

        changes: dict[str, Any] = {}

        def meanwhile(fraction: float, _message: str) -> None:
            """Change the gallery mid-reindex: enroll after the first batch, delete after the
            new index was built, so that only the catch-up under the lock can see either."""
            if "enrolled" not in changes:
                changes["enrolled"] = enroll(client, faces_dir, PEOPLE[0], (3,))
                face_subjects.update(changes["enrolled"])
            if fraction >= 0.9 and "deleted" not in changes:
                changes["deleted"] = unprobed_face
                assert client.delete(f"/faces/{changes['deleted']}").status_code == 204

        with ThreadPoolExecutor(max_workers=3) as pool:
            probing = [pool.submit(keep_probing, slot) for slot in range(3)]
            wait_until(lambda: all(answers))
            result = reindex(
                context,
                backbone="facenet-vggface2",
                device=CPU,
                models_dir=tmp_path / "no-model-cards",
                weights=facenet_weights,
                progress=meanwhile,
                batch_size=3,
            )
            seen_at_switch = [len(slot) for slot in answers]
            wait_until(
                lambda: all(len(a) >= n + 2 for a, n in zip(answers, seen_at_switch, strict=True))
            )
            stop.set()
            for future in probing:
                future.result()

        new = version_view(result.version).model_dump()
        assert new["backbone"] == "facenet-vggface2" and new["embedding_dim"] == 512
        assert old["backbone"] == "dlib-resnet" and new["id"] != old["id"]
        assert set(statuses) == {200}
        for slot in answers:
            ids = [answer["model_version"]["id"] for answer in slot]
            switch = ids.index(new["id"])
            assert switch > 0 and ids == [old["id"]] * switch + [new["id"]] * (len(ids) - switch)
            for answer in slot:
                assert_consistent(answer, [old, new], face_subjects)
            for answer in slot:
                # Either model finds the very face it embedded from this photo.
                best = central_face(answer)["candidates"][0]
                assert best["face_id"] == probed_faces[answer["person"]]
                assert best["similarity"] > 0.99

        assert (result.faces, result.caught_up, result.realigned) == (8, 1, 8)
        stats = client.get("/stats").json()
        assert stats["model_version"] == new
        assert stats["faces"] == stats["index_size"] == 8
        (enrolled_meanwhile,) = changes["enrolled"]
        with session_scope(context.sessions) as session:
            per_version = dict(
                session.execute(
                    select(Embedding.model_version_id, func.count()).group_by(
                        Embedding.model_version_id
                    )
                ).all()
            )
            versions_of_late_face = set(
                session.scalars(
                    select(Embedding.model_version_id).where(
                        Embedding.face_id == enrolled_meanwhile
                    )
                )
            )
        assert per_version == {old["id"]: 8, new["id"]: 8}
        # Enrolled through the old runtime, then caught up under the lock.
        assert versions_of_late_face == {old["id"], new["id"]}
        late = probe(client, photo(faces_dir, PEOPLE[0], 3))
        assert late["model_version"] == new
        assert enrolled_meanwhile in {c["face_id"] for c in central_face(late)["candidates"]}
        deleted_photo = probe(client, photo(faces_dir, PEOPLE[-1], 2))
        assert changes["deleted"] not in {
            c["face_id"] for c in central_face(deleted_photo)["candidates"]
        }


def test_a_reindex_job_runs_through_the_api_and_back(
    open_client: Callable[..., Any], tmp_path: Path, faces_dir: Path, facenet_weights: Path
) -> None:
    settings = {"match_threshold": THRESHOLD, "facenet_vggface2_weights": facenet_weights}
    with open_client(tmp_path / "data", **settings) as client:
        faces = enroll(client, faces_dir, PEOPLE[0], (1,)) | enroll(
            client, faces_dir, PEOPLE[1], (1,)
        )
        old = client.get("/stats").json()["model_version"]
        context: GalleryContext = gallery_internals(client)

        # While the test holds the follower's lock the job cannot switch (its last step),
        # so it is surely still queued or running when the second request comes.
        with context.follower.switching():
            submitted = client.post("/admin/reindex", json={"backbone": "facenet-vggface2"})
            assert submitted.status_code == 202
            job = submitted.json()
            assert (job["kind"], job["status"], job["parameters"]) == (
                "reindex",
                "queued",
                {"backbone": "facenet-vggface2"},
            )
            conflict = client.post("/admin/reindex", json={"backbone": "facenet-vggface2"})
            assert conflict.status_code == 409 and conflict.json()["code"] == "job_conflict"

        done = wait_for_job(client, job["id"])
        assert (done["status"], done["progress"], done["error"]) == ("succeeded", 1.0, None)
        assert done["started_at"] and done["finished_at"] and done["heartbeat_at"]
        new = client.get("/stats").json()["model_version"]
        assert done["result"] == {"model_version": new, "faces": 2, "caught_up": 0, "realigned": 2}
        assert new["backbone"] == "facenet-vggface2"
        finished = client.post(f"/admin/jobs/{job['id']}/cancel")
        assert finished.status_code == 409 and finished.json()["code"] == "job_finished"
        # The model in service now, not LINEUP_BACKBONE, is what a reindex cannot go to.
        again = client.post("/admin/reindex", json={"backbone": "facenet-vggface2"})
        assert again.status_code == 409 and again.json()["code"] == "reindex_refused"

        # Back to dlib: its chips were cut for its own template, so none is re-aligned.
        back = client.post("/admin/reindex", json={"backbone": "dlib-resnet"}).json()
        assert wait_for_job(client, back["id"])["result"] == {
            "model_version": old,
            "faces": 2,
            "caught_up": 0,
            "realigned": 0,
        }
        answer = probe(client, photo(faces_dir, PEOPLE[0], 1))
        assert answer["model_version"] == old
        best = central_face(answer)["candidates"][0]
        assert best["face_id"] == min(faces) and best["similarity"] > 0.99

        listed = client.get("/admin/jobs").json()
        assert [j["id"] for j in listed] == [back["id"], job["id"]]
        assert client.get(f"/admin/jobs/{job['id']}").json() == done
        missing = client.get("/admin/jobs/9999")
        assert missing.status_code == 404 and missing.json()["code"] == "job_not_found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"backbone": "no-such-net"}, "unknown_backbone"),
        ({"backbone": "No/Such/Net"}, "invalid_request"),
        ({"backbone": "dlib-resnet", "weights": "/tmp/x.pt"}, "invalid_request"),
        ({}, "invalid_request"),
    ],
    ids=["unknown backbone", "not a model name", "weights are not for HTTP", "no backbone"],
)
def test_bad_reindex_requests_are_refused(
    open_client: Callable[..., Any], tmp_path: Path, body: dict[str, str], code: str
) -> None:
    with open_client(tmp_path / "data", match_threshold=THRESHOLD) as client:
        response = client.post("/admin/reindex", json=body)
        assert response.status_code == 422 and response.json()["code"] == code
        if code == "unknown_backbone":
            assert "built in: dlib-resnet" in response.json()["detail"]
        assert client.get("/admin/jobs").json() == []


@pytest.mark.timeout(300)  # the lock held below must never turn a failure into a hang
def test_cancelling_a_running_reindex_leaves_the_old_model_in_place(
    open_client: Callable[..., Any],
    tmp_path: Path,
    faces_dir: Path,
    facenet_weights: Path,
    embedder: FaceEmbedder,
) -> None:
    """The cancel is made to land before the job's first check, every time: another
    process enrolls a face, so the job's first look at the model must catch up with
    that change, under the follower's lock, which the test holds until it has cancelled."""
    settings = {"match_threshold": THRESHOLD, "facenet_vggface2_weights": facenet_weights}
    with open_client(tmp_path / "data", **settings) as client:
        faces = enroll(client, faces_dir, PEOPLE[0], (1, 2))
        old = client.get("/stats").json()["model_version"]
        context: GalleryContext = gallery_internals(client)
        other = open_lineup(client.app.state.settings, embedder=embedder)  # type: ignore[attr-defined]
        try:
            path = photo(faces_dir, PEOPLE[1], 1)
            created = other.gallery.create_subject(SubjectCreate(display_name=PEOPLE[1]), by=BY)
            uploads = [Upload(filename=path.name, data=path.read_bytes())]
            enrolled = other.gallery.enroll(created.id, uploads, policy="largest", by=BY)
            assert enrolled.enrolled == 1
        finally:
            other.close()
        jobs = client.app.state.jobs  # type: ignore[attr-defined]
        with context.follower.switching():
            # Submitted past the route, whose own look at the model would wait for this lock.
            job = jobs.submit("reindex", {"backbone": "facenet-vggface2"}, by=BY)
            deadline = time.monotonic() + 60
            while client.get(f"/admin/jobs/{job.id}").json()["status"] == "queued":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            cancelling = client.post(f"/admin/jobs/{job.id}/cancel")
            assert cancelling.status_code == 202
            assert (cancelling.json()["status"], cancelling.json()["cancel_requested"]) == (
                "running",
                True,
            )

        ended = wait_for_job(client, job.id)
        assert (ended["status"], ended["error"], ended["result"]) == ("cancelled", None, None)
        assert client.get("/stats").json()["model_version"] == old
        with session_scope(context.sessions) as session:
            assert set(session.scalars(select(Embedding.model_version_id))) == {old["id"]}
            others = session.scalars(select(ModelVersion).where(ModelVersion.id != old["id"]))
            keys = [f"{row.backbone}@{row.weights_hash}" for row in others]
        assert len(keys) == 1  # it ran: registered its version, then stopped at a check
        assert not any(context.index_store.path_for(key).exists() for key in keys)
        best = central_face(probe(client, photo(faces_dir, PEOPLE[0], 1)))["candidates"][0]
        assert best["face_id"] == min(faces) and best["similarity"] > 0.99


def test_jobs_cut_short_by_a_restart_are_failed(
    open_client: Callable[..., Any], tmp_path: Path, facenet_weights: Path
) -> None:
    data_dir = tmp_path / "data"
    with open_client(data_dir, match_threshold=THRESHOLD):
        pass
    engine = create_engine_for(f"sqlite:///{data_dir.resolve() / 'lineup.db'}")
    with session_scope(make_session_factory(engine)) as session:  # what a crash leaves behind
        session.add_all(
            [Job(kind="reindex", status=s, parameters={}) for s in ("running", "queued")]
        )
    engine.dispose()

    settings = {"match_threshold": THRESHOLD, "facenet_vggface2_weights": facenet_weights}
    with open_client(data_dir, **settings) as client:
        jobs = client.get("/admin/jobs").json()
        assert [(j["status"], j["error"]) for j in jobs] == [("failed", INTERRUPTED)] * 2
        # Nothing is left queued or running, so a new job is accepted, and it runs.
        submitted = client.post("/admin/reindex", json={"backbone": "facenet-vggface2"})
        assert submitted.status_code == 202, submitted.json()
        assert wait_for_job(client, submitted.json()["id"])["status"] == "succeeded"


def test_a_running_job_blocks_new_ones_until_it_ends(
    open_client: Callable[..., Any], tmp_path: Path, facenet_weights: Path
) -> None:
    settings = {"match_threshold": THRESHOLD, "facenet_vggface2_weights": facenet_weights}
    with open_client(tmp_path / "data", **settings) as client:
        context: GalleryContext = gallery_internals(client)
        with session_scope(context.sessions) as session:  # running, but in no worker's hands
            job = Job(kind="reindex", status="running", parameters={"backbone": "dlib-resnet"})
            session.add(job)
            session.flush()
            job_id = job.id
        conflict = client.post("/admin/reindex", json={"backbone": "facenet-vggface2"})
        assert conflict.status_code == 409 and conflict.json()["code"] == "job_conflict"

        asked = client.post(f"/admin/jobs/{job_id}/cancel")
        assert asked.status_code == 202
        assert (asked.json()["status"], asked.json()["cancel_requested"]) == ("running", True)
        store = client.app.state.jobs.store  # type: ignore[attr-defined]
        store.finish(job_id, status="cancelled", message="cancelled")
        again = client.post(f"/admin/jobs/{job_id}/cancel")
        assert again.status_code == 409 and again.json()["code"] == "job_finished"
        accepted = client.post("/admin/reindex", json={"backbone": "facenet-vggface2"})
        assert accepted.status_code == 202, accepted.json()
        assert wait_for_job(client, accepted.json()["id"])["status"] == "succeeded"


def test_a_reindex_to_the_active_model_is_refused_at_once(
    open_client: Callable[..., Any], tmp_path: Path
) -> None:
    with open_client(tmp_path / "data", match_threshold=THRESHOLD) as client:
        assert client.get("/stats").json()["model_version"]["backbone"] == "dlib-resnet"
        refused = client.post("/admin/reindex", json={"backbone": "dlib-resnet"})
        assert refused.status_code == 409, refused.json()
        assert refused.json()["code"] == "reindex_refused"
        assert "dlib-resnet is already the active model" in refused.json()["detail"]
        assert client.get("/admin/jobs").json() == []


def test_a_reindex_cancelled_between_batches_switches_nothing(
    open_client: Callable[..., Any], tmp_path: Path, faces_dir: Path, facenet_weights: Path
) -> None:
    with open_client(tmp_path / "data", match_threshold=THRESHOLD) as client:
        enroll(client, faces_dir, PEOPLE[0], (1, 2))
        old = client.get("/stats").json()["model_version"]
        context: GalleryContext = gallery_internals(client)
        batches: list[float] = []
        with pytest.raises(OperationCancelled):
            reindex(
                context,
                backbone="facenet-vggface2",
                device=CPU,
                models_dir=tmp_path / "no-model-cards",
                weights=facenet_weights,
                progress=lambda fraction, _: batches.append(fraction),
                cancelled=lambda: len(batches) == 1,  # after the first batch was stored
                batch_size=1,
            )
        assert batches == [0.45]
        assert client.get("/stats").json()["model_version"] == old
        with session_scope(context.sessions) as session:
            assert set(session.scalars(select(Embedding.model_version_id))) == {old["id"]}
            new = session.scalars(select(ModelVersion).where(ModelVersion.id != old["id"])).one()
            assert not new.active
        key = f"{new.backbone}@{new.weights_hash}"
        assert not context.index_store.path_for(key).exists()


def write_card(models_dir: Path, backbone: str, weights: Path, threshold: float) -> None:
    """A model card as `lineup calibrate` writes it: the threshold measured on these weights."""
    card = models_dir / backbone / "card.json"
    card.parent.mkdir(parents=True)
    fields = {"weights_hash": weights_version(weights), "calibration": {"threshold": threshold}}
    card.write_text(json.dumps(fields))


def test_the_new_version_brings_its_calibrated_threshold_or_is_refused(
    embedder: FaceEmbedder, tmp_path: Path, faces_dir: Path, facenet_weights: Path
) -> None:
    models_dir = tmp_path / "models"
    write_card(models_dir, "dlib-resnet", default_weights_path(), 0.55)
    settings = Settings(data_dir=tmp_path / "data", models_dir=models_dir, device="cpu")
    with TestClient(create_app(settings, embedder=embedder)) as client:
        authorize(client)
        enroll(client, faces_dir, PEOPLE[0], (1,))
        old = client.get("/stats").json()["model_version"]
        assert old["threshold"] == 0.55
        context: GalleryContext = gallery_internals(client)
        options: dict[str, Any] = {
            "backbone": "facenet-vggface2",
            "device": CPU,
            "models_dir": models_dir,
            "weights": facenet_weights,
        }
        with pytest.raises(ReindexRefused, match="no calibrated threshold"):
            reindex(context, **options)
        assert client.get("/stats").json()["model_version"] == old

        write_card(models_dir, "facenet-vggface2", facenet_weights, 0.97)
        result = reindex(context, **options)
        assert result.version.threshold == 0.97
        answer = probe(client, photo(faces_dir, PEOPLE[0], 1))
        assert answer["model_version"]["threshold"] == answer["threshold"] == 0.97
