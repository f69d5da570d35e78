"""The gallery under changes made meanwhile: by another request, another process, or a crash.

Interleavings are forced, not hoped for: a detector that does one thing to the
gallery before it detects puts that change exactly between an enrollment's
start and its commit, where a real concurrent request would land.
"""

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.composition import Lineup, open_lineup
from app.gallery.errors import SubjectNotFound
from app.gallery.reindex import _discard
from app.vision.backbones.base import Backbone
from app.vision.detection import Detection, FaceDetector
from app.vision.embedder import FaceEmbedder

from access_support import BY, SEARCH_CASE
from gallery_support import (
    LineupOpener,
    enroll_emma,
    gallery_files,
    lfw_upload,
    new_subject,
    settings_for,
)

CPU = torch.device("cpu")


class MeanwhileDetector:
    """A real detector that first runs `meanwhile` once: a change landing mid-operation."""

    def __init__(self, real: FaceDetector) -> None:
        self.real = real
        self.meanwhile: Callable[[], None] | None = None

    def detect(self, image: Image.Image) -> list[Detection]:
        change, self.meanwhile = self.meanwhile, None
        if change is not None:
            change()
        return self.real.detect(image)


@pytest.fixture
def meanwhile_lineup(
    tmp_path: Path, detector: FaceDetector, dlib_backbone: Backbone
) -> tuple[Lineup, MeanwhileDetector]:
    meanwhile = MeanwhileDetector(detector)
    embedder = FaceEmbedder(detector=meanwhile, backbone=dlib_backbone)
    lineup = open_lineup(settings_for(tmp_path / "data"), embedder=embedder)
    yield lineup, meanwhile
    lineup.close()


def test_probing_an_empty_gallery_answers_no_match(
    open_at: LineupOpener, tmp_path: Path, faces_dir: Path
) -> None:
    with open_at(tmp_path / "data") as lineup:
        result = lineup.gallery.probe(
            lfw_upload(faces_dir, "Emma_Watson", 1).data, k=5, by=BY, case=SEARCH_CASE
        )
    assert [(face.decision, face.candidates) for face in result.faces] == [("no_match", [])]


def test_enrolling_into_a_subject_deleted_meanwhile_is_refused_and_stores_nothing(
    meanwhile_lineup: tuple[Lineup, MeanwhileDetector], tmp_path: Path, faces_dir: Path
) -> None:
    lineup, meanwhile = meanwhile_lineup
    subject = new_subject(lineup, "Going")
    meanwhile.meanwhile = lambda: lineup.gallery.delete_subject(subject, by=BY)
    with pytest.raises(SubjectNotFound):
        lineup.gallery.enroll(subject, [lfw_upload(faces_dir, "Emma_Watson", 1)], by=BY)
    assert gallery_files(tmp_path / "data") == set()
    assert lineup.gallery.stats().photos == 0


def test_an_enrollment_overtaken_by_a_reindex_is_embedded_with_the_new_model(
    meanwhile_lineup: tuple[Lineup, MeanwhileDetector], faces_dir: Path
) -> None:
    lineup, meanwhile = meanwhile_lineup
    gallery = lineup.gallery
    subject = new_subject(lineup, "Emma")
    enroll_emma(lineup, faces_dir, subject, 1)
    meanwhile.meanwhile = lambda: gallery.reindex(
        "dlib-resnet-cctv", device=CPU, models_dir=settings_for(Path()).models_dir
    )
    result = gallery.enroll(subject, [lfw_upload(faces_dir, "Emma_Watson", 2)], by=BY)
    assert result.enrolled == 1
    assert gallery.active_model().backbone == "dlib-resnet-cctv"
    stats = gallery.stats()
    assert stats.faces == stats.index_size == 2
    probe = gallery.probe(
        lfw_upload(faces_dir, "Emma_Watson", 2).data, k=1, by=BY, case=SEARCH_CASE
    )
    (best,) = probe.faces[0].candidates
    assert best.face_id == result.photos[0].face.id and best.similarity > 0.999


def test_ids_are_never_reused(open_at: LineupOpener, tmp_path: Path, faces_dir: Path) -> None:
    with open_at(tmp_path / "data") as lineup:
        first = new_subject(lineup, "First")
        enrolled = lineup.gallery.enroll(first, [lfw_upload(faces_dir, "Emma_Watson", 1)], by=BY)
        face = enrolled.photos[0].face
        lineup.gallery.delete_subject(first, by=BY)
        second = new_subject(lineup, "Second")
        again = lineup.gallery.enroll(second, [lfw_upload(faces_dir, "Emma_Watson", 1)], by=BY)
    assert second > first
    assert again.photos[0].face.id > face.id and again.photos[0].face.photo_id > face.photo_id
    assert f"photos/{face.photo_id}.jpg" not in gallery_files(tmp_path / "data")


def test_a_deleted_faces_photo_can_be_enrolled_again(
    open_at: LineupOpener, tmp_path: Path, faces_dir: Path
) -> None:
    with open_at(tmp_path / "data") as lineup:
        subject = new_subject(lineup, "Emma")
        face = enroll_emma(lineup, faces_dir, subject, 1)
        lineup.gallery.delete_face(face.id, by=BY)
        assert gallery_files(tmp_path / "data") == set()
        again = lineup.gallery.enroll(
            subject, [lfw_upload(faces_dir, "Emma_Watson", 1)], by=BY
        ).photos[0]
    assert again.status == "enrolled" and again.face is not None


def test_a_photo_whose_face_an_older_version_deleted_can_be_enrolled_again(
    open_at: LineupOpener, tmp_path: Path, faces_dir: Path
) -> None:
    """Databases from before faces took their photos with them still hold such photos."""
    data = tmp_path / "data"
    with open_at(data) as lineup:
        subject = new_subject(lineup, "Emma")
        face = enroll_emma(lineup, faces_dir, subject, 1)
    with sqlite3.connect(data / "lineup.db") as db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("DELETE FROM faces WHERE id = ?", (face.id,))
    with open_at(data) as lineup:
        again = lineup.gallery.enroll(
            subject, [lfw_upload(faces_dir, "Emma_Watson", 1)], by=BY
        ).photos[0]
        assert again.status == "enrolled"
        assert lineup.gallery.stats().photos == 1
    assert gallery_files(data) == {
        f"photos/{again.face.photo_id}.jpg",
        f"chips/{again.face.id}.png",
    }


def test_the_start_up_sweep_removes_what_a_killed_process_left(
    open_at: LineupOpener, tmp_path: Path, faces_dir: Path
) -> None:
    data = tmp_path / "data"
    with open_at(data) as lineup:
        enroll_emma(lineup, faces_dir, new_subject(lineup, "Emma"), 1)
        kept = gallery_files(data)
        version = lineup.gallery.active_model()
    for leftover in ("photos/354.jpg", "chips/354.png", "chips/.tmp-abc", "photos/.tmp-def"):
        (data / leftover).write_bytes(b"left by a kill -9")
    (data / "index" / ".dlib-resnet.faiss.x1y2.tmp").write_bytes(b"half an index")
    with sqlite3.connect(data / "lineup.db") as db:  # a reindex that died after one batch
        db.execute(
            "INSERT INTO model_versions (backbone, weights_hash, embedding_dim, alignment, active,"
            " building_until) VALUES ('dying', 'abc', 128, 'dlib-150', 0, '2020-01-01 00:00:00')"
        )
        dying = db.execute("SELECT id FROM model_versions WHERE backbone = 'dying'").fetchone()[0]
        db.execute(
            "INSERT INTO embeddings (face_id, model_version_id, vector) "
            "SELECT face_id, ?, vector FROM embeddings WHERE model_version_id = ?",
            (dying, version.id),
        )
    with open_at(data):
        pass
    assert gallery_files(data) == kept
    assert list((data / "index").glob(".*.tmp")) == []
    with sqlite3.connect(data / "lineup.db") as db:
        left = db.execute("SELECT count(*) FROM embeddings WHERE model_version_id = ?", (dying,))
        assert left.fetchone()[0] == 0


def test_a_restart_replays_only_the_changes_after_the_saved_index(
    open_at: LineupOpener, tmp_path: Path, faces_dir: Path
) -> None:
    data = tmp_path / "data"
    with open_at(data) as lineup:
        subject = new_subject(lineup, "Emma")
        lineup.gallery.enroll(
            subject, [lfw_upload(faces_dir, "Emma_Watson", n) for n in (1, 2)], by=BY
        )
    (sidecar,) = (data / "index").glob("*.json")
    saved = json.loads(sidecar.read_text())
    other = open_lineup(settings_for(data))  # another process, killed before it saved
    other.gallery.enroll(subject, [lfw_upload(faces_dir, "Emma_Watson", 3)], by=BY)
    other.engine.dispose()
    with open_at(data) as lineup:
        stats = lineup.gallery.stats()
        assert stats.faces == stats.index_size == 3
    resaved = json.loads(sidecar.read_text())
    assert resaved["change_seq"] > saved["change_seq"] and resaved["count"] == 3


def test_stats_are_one_snapshot(open_at: LineupOpener, tmp_path: Path) -> None:
    with open_at(tmp_path / "data") as lineup:
        stats = lineup.gallery.stats()
    assert (stats.subjects, stats.photos, stats.faces, stats.index_size) == (0, 0, 0, 0)
    assert np.isfinite(stats.model_version.threshold or 0)


def test_a_process_that_slept_through_a_switch_away_and_back_reloads(
    open_at: LineupOpener, tmp_path: Path, faces_dir: Path
) -> None:
    """Reindexing back to a version replaces its vectors without logging every face, so a
    process that sees both switches in one catch-up must reload even its own version."""
    data = tmp_path / "data"
    models = settings_for(data).models_dir
    with open_at(data) as sleeper, open_at(data) as other:
        subject = new_subject(other, "Emma")
        other.gallery.enroll(subject, [lfw_upload(faces_dir, "Emma_Watson", 1)], by=BY)
        assert sleeper.gallery.stats().index_size == 1  # caught up, then asleep
        other.gallery.reindex("dlib-resnet-cctv", device=CPU, models_dir=models)
        late = other.gallery.enroll(subject, [lfw_upload(faces_dir, "Emma_Watson", 2)], by=BY)
        other.gallery.reindex("dlib-resnet", device=CPU, models_dir=models)

        probe = sleeper.gallery.probe(
            lfw_upload(faces_dir, "Emma_Watson", 2).data, k=1, by=BY, case=SEARCH_CASE
        )
        (best,) = probe.faces[0].candidates
        assert best.face_id == late.photos[0].face.id and best.similarity > 0.999
        stats = sleeper.gallery.stats()
        assert stats.faces == stats.index_size == 2


def test_a_failed_reindex_never_discards_the_active_versions_rows(
    open_at: LineupOpener, tmp_path: Path, faces_dir: Path
) -> None:
    with open_at(tmp_path / "data") as lineup:
        enroll_emma(lineup, faces_dir, new_subject(lineup, "Emma"), 1)
        active = lineup.gallery.active_model()
        _discard(lineup.gallery._context, active)  # what a reindex failing after its switch runs
    with open_at(tmp_path / "data") as lineup:
        stats = lineup.gallery.stats()
        assert stats.faces == stats.index_size == 1
