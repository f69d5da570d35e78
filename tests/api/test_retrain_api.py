"""Retraining through HTTP: a fine-tuned model made from the gallery, put in service by a
reindex, kept across a restart; refusals, conflicts and cancellation.

The runs are tiny on purpose (one epoch of two batches of four chips, most
layers frozen): they check the wiring, not what training achieves. Every app
here runs on a temporary models dir, never on the repository's `models/`, and
reads photo trees from the default training root (`data/training-sets`) unless
a test points LINEUP_TRAINING_ROOT at the shared photos.
"""

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file, save_file

from app.composition import open_lineup
from app.config import Settings
from app.gallery.startup import ActiveModelUnavailable
from app.main import create_app
from app.vision.backbones.finetuned import WEIGHTS_FILE
from app.vision.backbones.weights import weights_version
from app.vision.embedder import FaceEmbedder

from access_support import CASE, authorize
from job_polling import wait_for_job

THRESHOLD = 0.6  # no card calibrates a model trained here
PEOPLE = ("Tom_Hanks", "Emma_Watson", "Heidi_Klum", "Monica_Seles")
TINY_RUN = {
    "epochs": 1,
    "m_per_class": 2,
    "classes_per_batch": 2,
    "batches_per_epoch": 2,
    "freeze_depth": 5,
    "head_dim": 64,
    "augment": False,
    # The plain building blocks: one unaugmented view, triplets mined in the batch.
    "views": "single",
    "reference": "batch",
}
Answer = dict[str, Any]


def settings_for(root: Path, training_root: Path | None = None) -> Settings:
    return Settings(
        data_dir=root / "data",
        models_dir=root / "models",
        training_root=training_root,
        device="cpu",
        match_threshold=THRESHOLD,
    )


def training_sets(root: Path) -> Path:
    """The default training root of the app `running(root)` starts, made."""
    folder = root / "data" / "training-sets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def running(
    root: Path, embedder: FaceEmbedder, *, training_root: Path | None = None
) -> Iterator[TestClient]:
    app = create_app(settings_for(root, training_root), embedder=embedder)
    with TestClient(app) as client:
        yield authorize(client)


def assert_start_refused(root: Path, embedder: FaceEmbedder, *, match: str) -> None:
    app = create_app(settings_for(root), embedder=embedder)
    with pytest.raises(ActiveModelUnavailable, match=match), TestClient(app):
        pass


def photo(faces_dir: Path, person: str, number: int) -> Path:
    return faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"


def enroll(client: TestClient, faces_dir: Path, person: str, numbers: range) -> list[int]:
    """A subject for `person` (made on first use) with photos `numbers`; the new face ids."""
    found = client.get("/subjects", params={"q": person.replace("_", " ")}).json()["items"]
    subject = found[0]["id"] if found else None
    if subject is None:
        body = {"display_name": person.replace("_", " "), "external_id": person}
        subject = client.post("/subjects", json=body).json()["id"]
    files = [
        ("files", (p.name, p.read_bytes(), "image/jpeg"))
        for p in (photo(faces_dir, person, n) for n in numbers)
    ]
    outcomes = client.post(
        f"/subjects/{subject}/photos", files=files, params={"face": "largest"}
    ).json()["photos"]
    assert [o["status"] for o in outcomes] == ["enrolled"] * len(numbers), outcomes
    return [o["face"]["id"] for o in outcomes]


def probe(client: TestClient, path: Path) -> Answer:
    response = client.post(
        "/probe", files={"image": (path.name, path.read_bytes(), "image/jpeg")}, data=CASE
    )
    assert response.status_code == 200, response.json()
    answer: Answer = response.json()
    return answer


def best_candidate(answer: Answer) -> Answer:
    """The best candidate of the face nearest the centre of a 250×250 lfw photo."""
    face = min(answer["faces"], key=lambda f: abs(f["box"]["x1"] + f["box"]["x2"] - 250))
    candidate: Answer = face["candidates"][0]
    return candidate


@dataclass(frozen=True)
class Story:
    """A gallery retrained on itself and reindexed to the new model, its app closed."""

    root: Path
    retrain: Answer
    reindex: Answer
    stats: Answer
    probe: Answer


@pytest.fixture(scope="module")
def story(
    tmp_path_factory: pytest.TempPathFactory, faces_dir: Path, embedder: FaceEmbedder
) -> Story:
    root = tmp_path_factory.mktemp("retrained")
    with running(root, embedder) as client:
        for person in PEOPLE:
            enroll(client, faces_dir, person, range(1, 5))
        body = {"name": "gallery-tuned", "dataset": {"kind": "gallery", "min_photos": 4}}
        submitted = client.post("/admin/retrain", json={**body, **TINY_RUN})
        assert submitted.status_code == 202, submitted.json()
        retrained = wait_for_job(client, submitted.json()["id"])
        assert retrained["status"] == "succeeded", retrained
        submitted = client.post("/admin/reindex", json={"backbone": "gallery-tuned"})
        assert submitted.status_code == 202, submitted.json()
        reindexed = wait_for_job(client, submitted.json()["id"])
        assert reindexed["status"] == "succeeded", reindexed
        stats = client.get("/stats").json()
        answer = probe(client, photo(faces_dir, "Tom_Hanks", 5))
    return Story(root, retrained, reindexed, stats, answer)


def copy_of(story: Story, tmp_path: Path) -> Path:
    """The story's data and models dirs, copied so a test may change them."""
    for folder in ("data", "models"):
        shutil.copytree(story.root / folder, tmp_path / folder, symlinks=True)
    return tmp_path


def test_a_model_retrained_on_the_gallery_is_put_in_service_by_a_reindex(story: Story) -> None:
    directory = story.root / "models" / "gallery-tuned"
    result = story.retrain["result"]
    assert story.retrain["progress"] == 1.0 and story.retrain["kind"] == "retrain"
    assert result["model"] == "gallery-tuned"
    assert result["weights_hash"] == weights_version(directory / WEIGHTS_FILE)
    assert (result["epochs"], len(result["epoch_losses"]), result["embedding_dim"]) == (1, 1, 64)
    assert (result["identities"], result["photos"]) == (4, 16)
    assert Path(result["card"]) == directory / "card.json" and Path(result["card"]).is_file()
    assert not (story.root / "data" / "training" / "gallery-tuned-gallery-chips").exists()

    version = story.stats["model_version"]
    assert (version["backbone"], version["weights_hash"]) == (
        "gallery-tuned",
        result["weights_hash"],
    )
    assert version["embedding_dim"] == 64
    assert story.reindex["result"]["model_version"] == version
    assert story.stats["faces"] == story.stats["index_size"] == 16
    assert story.probe["model_version"] == version
    assert best_candidate(story.probe)["subject"]["external_id"] == "Tom_Hanks"


def test_a_restart_keeps_the_model_the_gallery_was_reindexed_to(
    story: Story, tmp_path: Path, faces_dir: Path, embedder: FaceEmbedder
) -> None:
    root = copy_of(story, tmp_path)
    version = story.stats["model_version"]
    with running(root, embedder) as client:  # LINEUP_BACKBONE is still dlib-resnet
        (late_face,) = enroll(client, faces_dir, "Tom_Hanks", range(5, 6))
    with running(root, embedder) as client:
        stats = client.get("/stats").json()
        assert stats["model_version"] == version
        assert stats["faces"] == stats["index_size"] == 17
        answer = probe(client, photo(faces_dir, "Tom_Hanks", 5))
        assert answer["model_version"] == version
        best = best_candidate(answer)
        assert best["face_id"] == late_face and best["similarity"] > 0.99


def test_a_running_service_follows_a_reindex_made_beside_it(
    story: Story, tmp_path: Path, faces_dir: Path, embedder: FaceEmbedder
) -> None:
    """`lineup reindex` switches the database while a service runs on the old model: the
    service's next request follows the switch, so what it enrolls next is embedded with
    the new model, and after a restart everything is still there."""
    root = copy_of(story, tmp_path)
    with running(root, embedder) as client:
        other_process = open_lineup(settings_for(root), embedder=embedder)
        try:
            other_process.gallery.reindex(
                "dlib-resnet", device=torch.device("cpu"), models_dir=root / "models"
            )
        finally:
            other_process.close()
        (late_face,) = enroll(client, faces_dir, "Heidi_Klum", range(5, 6))
        answer = probe(client, photo(faces_dir, "Heidi_Klum", 5))
        assert answer["model_version"]["backbone"] == "dlib-resnet"
        assert best_candidate(answer)["face_id"] == late_face
        stats = client.get("/stats").json()
        assert stats["faces"] == stats["index_size"] == 17
    with running(root, embedder) as client:
        stats = client.get("/stats").json()
        assert stats["model_version"]["backbone"] == "dlib-resnet"
        assert stats["faces"] == stats["index_size"] == 17
        best = best_candidate(probe(client, photo(faces_dir, "Heidi_Klum", 5)))
        assert best["face_id"] == late_face and best["similarity"] > 0.99


def test_a_lost_model_stops_the_start_until_the_gallery_is_recovered_onto_another(
    story: Story, tmp_path: Path, faces_dir: Path, embedder: FaceEmbedder
) -> None:
    root = copy_of(story, tmp_path)
    with running(root, embedder) as client:
        (late_face,) = enroll(client, faces_dir, "Emma_Watson", range(5, 6))
    weights = root / "models" / "gallery-tuned" / WEIGHTS_FILE
    tensors = load_file(weights)
    tensors["head.weight"] = tensors["head.weight"].flip(0)  # retrained in place, say
    save_file(tensors, weights)
    assert_start_refused(root, embedder, match="weights of 'gallery-tuned' changed")
    weights.write_bytes(b"half a file")
    assert_start_refused(root, embedder, match="does not hold a fine-tuned model")
    shutil.rmtree(root / "models" / "gallery-tuned")
    assert_start_refused(root, embedder, match="lineup reindex MODEL")

    lineup = open_lineup(settings_for(root), embedder=embedder, recover_with="dlib-resnet")
    try:
        stats = lineup.gallery.stats()
        assert stats.model_version.backbone == "dlib-resnet"
        assert stats.faces == stats.index_size == 17  # the late face too, embedded just now
    finally:
        lineup.close()
    with running(root, embedder) as client:  # and it stays so
        answer = probe(client, photo(faces_dir, "Emma_Watson", 5))
        assert answer["model_version"]["backbone"] == "dlib-resnet"
        assert best_candidate(answer)["face_id"] == late_face


def test_a_running_retrain_blocks_other_jobs_and_cancelling_it_leaves_no_model(
    story: Story, tmp_path: Path, embedder: FaceEmbedder
) -> None:
    root = copy_of(story, tmp_path)
    with running(root, embedder) as client:
        long_run = {**TINY_RUN, "epochs": 50, "batches_per_epoch": 50}
        body = {"name": "never-finished", "dataset": {"kind": "gallery"}, **long_run}
        job = client.post("/admin/retrain", json=body).json()
        deadline = time.monotonic() + 120
        while (seen := client.get(f"/admin/jobs/{job['id']}").json())["progress"] == 0:
            assert seen["status"] in ("queued", "running") and time.monotonic() < deadline, seen
            time.sleep(0.05)
        assert seen["message"].startswith("epoch 1 of 50, batch ")
        for kind, other in (
            ("reindex", {"backbone": "dlib-resnet"}),
            ("retrain", {**body, "name": "another"}),
        ):
            refused = client.post(f"/admin/{kind}", json=other)
            assert refused.status_code == 409 and refused.json()["code"] == "job_conflict"

        assert client.post(f"/admin/jobs/{job['id']}/cancel").status_code == 202
        ended = wait_for_job(client, job["id"])
        assert (ended["status"], ended["result"], ended["error"]) == ("cancelled", None, None)
        assert not (root / "models" / "never-finished").exists()
        assert not (root / "data" / "training" / "never-finished-gallery-chips").exists()
        assert client.get("/stats").json()["model_version"] == story.stats["model_version"]


@pytest.mark.parametrize(
    ("changes", "code", "says"),
    [
        (
            {"dataset": {"kind": "folder", "path": "/no/such/tree"}},
            "retrain_refused",
            "outside the training root",
        ),
        ({"dataset": {"kind": "folder", "path": "no-such-tree"}}, "retrain_refused", "not exist"),
        ({}, "retrain_refused", "has 0 identities"),
        ({"name": "dlib-resnet"}, "invalid_request", "built-in backbone"),
        ({"name": "../escape"}, "invalid_request", "name"),
        ({"loss": "hinge"}, "invalid_request", "unknown loss 'hinge'"),
        ({"m_per_class": 1}, "invalid_request", "m_per_class"),
        ({"dataset": {"kind": "photos"}}, "invalid_request", "dataset"),
        ({"distillation": 1.0, "views": "single"}, "invalid_request", "paired views"),
        ({"composites": 0.5, "views": "single"}, "invalid_request", "paired views"),
        ({"composites": 1.0}, "invalid_request", "composites"),
        (
            {"loss": "contrastive", "pos_margin": 0.6, "neg_margin": 0.4},
            "invalid_request",
            "pos_margin < neg_margin",
        ),
    ],
    ids=[
        "folder outside",
        "no folder",
        "empty gallery",
        "built-in name",
        "path name",
        "loss",
        "m",
        "kind",
        "distillation",
        "composites single",
        "composites all",
        "contrastive margins",
    ],
)
def test_bad_retrain_requests_are_refused_at_once(
    tmp_path: Path, embedder: FaceEmbedder, changes: Answer, code: str, says: str
) -> None:
    training_sets(tmp_path)
    with running(tmp_path, embedder) as client:
        body = {"name": "mine", "dataset": {"kind": "gallery"}, **changes}
        response = client.post("/admin/retrain", json=body)
        assert response.status_code == 422, response.json()
        assert response.json()["code"] == code and says in response.json()["detail"]
        assert client.get("/admin/jobs").json() == []


def test_a_batch_wider_than_the_identities_left_after_calibration_is_refused_at_once(
    tmp_path: Path, embedder: FaceEmbedder
) -> None:
    """12 identities: 2 are held out to calibrate, so a batch of 12 identities cannot be made."""
    tree = training_sets(tmp_path) / "tree"
    for number in range(12):
        (tree / f"person-{number:02d}").mkdir(parents=True)
    with running(tmp_path, embedder) as client:
        body = {"name": "mine", "dataset": {"kind": "folder", "path": str(tree)}}
        refused = client.post("/admin/retrain", json={**body, "classes_per_batch": 12})
        assert refused.status_code == 422 and refused.json()["code"] == "retrain_refused"
        assert "only 10 identities to train on" in refused.json()["detail"]
        assert client.get("/admin/jobs").json() == []


def test_a_retrain_on_a_photo_tree_and_its_refusals(
    tmp_path: Path, faces_dir: Path, embedder: FaceEmbedder
) -> None:
    tree = training_sets(tmp_path) / "tree"
    for person in PEOPLE[:2]:
        (tree / person).mkdir(parents=True)
        for number in (1, 2):
            (tree / person / photo(faces_dir, person, number).name).symlink_to(
                photo(faces_dir, person, number)
            )
    (tmp_path / "models" / "taken").mkdir(parents=True)
    with running(tmp_path, embedder) as client:
        folder = {"kind": "folder", "path": str(tree)}
        one_person = {"kind": "folder", "path": str(tree / PEOPLE[0])}
        for body, says in (
            ({"name": "taken", "dataset": folder}, "already exists"),
            ({"name": "mine", "dataset": one_person}, "has 0 identities"),
            ({"name": "mine", "dataset": folder, "classes_per_batch": 3}, "only 2 identities"),
        ):
            refused = client.post("/admin/retrain", json=body)
            assert refused.status_code == 422 and refused.json()["code"] == "retrain_refused"
            assert says in refused.json()["detail"]
        unknown = client.post("/admin/reindex", json={"backbone": "mine"})
        assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_backbone"

        # Relative to the training root, with a split inside it: only the split's
        # identities that have a folder count.
        split = tree.parent / "split.json"
        split.write_text(json.dumps({"train": [*PEOPLE[:2], "Nobody_Here"], "val": []}))
        relative = {"kind": "folder", "path": "tree", "split": "split.json"}
        run = {**TINY_RUN, "batches_per_epoch": 1}
        job = client.post("/admin/retrain", json={"name": "mine", "dataset": relative, **run})
        assert job.status_code == 202, job.json()
        recorded = job.json()["parameters"]["dataset"]
        assert (recorded["path"], recorded["split"]) == (str(tree.resolve()), str(split.resolve()))
        done = wait_for_job(client, job.json()["id"])
        assert done["status"] == "succeeded", done
        assert (done["result"]["identities"], done["result"]["photos"]) == (2, 4)
        assert (tmp_path / "models" / "mine" / WEIGHTS_FILE).is_file()
        assert list((tmp_path / "data" / "training" / "chip-cache").glob("*/chips/*.png"))
        assert client.post("/admin/reindex", json={"backbone": "mine"}).status_code == 202


def test_a_retrain_on_ten_or_more_identities_calibrates_on_held_out_ones(
    tmp_path: Path, faces_dir: Path, embedder: FaceEmbedder
) -> None:
    """lfw_mini's 12 people: 10 train, 2 are held out and set the new model's threshold."""
    folder = {"kind": "folder", "path": str(faces_dir / "lfw_mini")}
    with running(tmp_path, embedder, training_root=faces_dir) as client:
        job = client.post("/admin/retrain", json={"name": "held", "dataset": folder, **TINY_RUN})
        done = wait_for_job(client, job.json()["id"])
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["identities"] == 10
    calibration = result["calibration"]
    assert (calibration["identities"], calibration["photos"]) == (2, 10)
    card = (tmp_path / "models" / "held" / "card.json").read_text()
    assert f'"threshold": {calibration["threshold"]}' in card
    data = json.loads(card)["training"]["data"]
    assert len(data["held_out_for_calibration"]) == 2
    # Paths are resolved inside the training root, so the card names the real folder.
    assert data["description"] == str((faces_dir / "lfw_mini").resolve())


def test_a_dataset_outside_the_training_root_is_refused_and_nothing_is_queued(
    tmp_path: Path, embedder: FaceEmbedder
) -> None:
    root = training_sets(tmp_path)
    outside = tmp_path / "outside"
    for folder in (root / "tree", outside):
        for person in ("a", "b", "c"):
            (folder / person).mkdir(parents=True)
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"train": ["a", "b"], "password": ["hunter2"]}))
    (root / "link").symlink_to(outside)
    (root / "split-link.json").symlink_to(secret)
    (root / "loop").symlink_to(root / "loop")
    cases = [
        ({"path": "."}, "is the training root itself"),
        ({"path": ".."}, "outside the training root"),
        ({"path": "tree/../.."}, "outside the training root"),
        ({"path": str(outside)}, "outside the training root"),
        ({"path": "link"}, "outside the training root"),
        ({"path": "link/a"}, "outside the training root"),
        ({"path": str(root / "link")}, "outside the training root"),
        ({"path": "tree", "split": str(secret)}, "outside the training root"),
        ({"path": "tree", "split": "split-link.json"}, "outside the training root"),
        ({"path": "tree", "split": "../../secret.json"}, "outside the training root"),
        ({"path": "loop"}, "cannot be resolved"),
    ]
    with running(tmp_path, embedder) as client:
        for dataset, says in cases:
            body = {"name": "mine", "dataset": {"kind": "folder", **dataset}}
            refused = client.post("/admin/retrain", json=body)
            assert refused.status_code == 422, (dataset, refused.json())
            detail = refused.json()["detail"]
            assert refused.json()["code"] == "retrain_refused" and says in detail, dataset
            assert "hunter2" not in detail
            if "link" in str(dataset):  # named as given, not by where the link points
                assert str(outside) not in detail and str(secret) not in detail
        assert client.get("/admin/jobs").json() == []


def test_a_broken_split_file_is_refused_without_quoting_it(
    tmp_path: Path, embedder: FaceEmbedder
) -> None:
    root = training_sets(tmp_path)
    for person in ("a", "b", "c"):
        (root / "tree" / person).mkdir(parents=True)
    secret = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG"
    splits: list[tuple[bytes, str]] = [
        (f'{{\n  "train": ["a", "b"],\n  {secret}\n}}\n'.encode(), "(line 3)"),
        (json.dumps({secret: ["a", "b"]}).encode(), "has no 'train' part"),
        (json.dumps({"train": secret}).encode(), "is not a valid split file"),
        (json.dumps([secret]).encode(), "is not a valid split file"),
        (b"\xff\xfe" + secret.encode("utf-16-le"), "(not UTF-8 text)"),
        (b"[" * 100_000 + secret.encode(), "is not a valid split file"),
    ]
    with running(tmp_path, embedder) as client:
        for number, (content, says) in enumerate(splits):
            (root / f"split-{number}.json").write_bytes(content)
            dataset = {"kind": "folder", "path": "tree", "split": f"split-{number}.json"}
            refused = client.post("/admin/retrain", json={"name": "mine", "dataset": dataset})
            assert refused.status_code == 422, (number, refused.json())
            detail = refused.json()["detail"]
            assert refused.json()["code"] == "retrain_refused" and says in detail, detail
            assert f"split-{number}.json" in detail
            assert "AWS" not in detail and "wJalr" not in detail, detail
        assert client.get("/admin/jobs").json() == []
