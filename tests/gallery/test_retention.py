"""Retention: a subject past its `retain_until` leaves no trace but the record of its purge.

No trace means no row, no photo or chip, and no vector in any index a process
holds or any snapshot on disk, of any model version.
"""

import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import torch
from sqlalchemy import select

from app.audit.actor import SYSTEM
from app.composition import Lineup, open_lineup
from app.db.engine import session_scope
from app.db.tables import AuditEvent, AuditSubject
from app.db.types import utc_now
from app.index.store import IndexStore
from app.jobs.housekeeping import Housekeeper, purge
from app.schemas import SubjectCreate, SubjectUpdate
from app.vision.embedder import FaceEmbedder

from access_support import BY, SEARCH_CASE
from gallery_support import LineupOpener, enroll_emma, gallery_files, lfw_upload, settings_for

CPU = torch.device("cpu")


def subject_until(lineup: Lineup, name: str, *, days: float) -> int:
    """A new subject to be kept `days` from now (a negative number: already expired)."""
    until = utc_now() + timedelta(days=days)
    create = SubjectCreate(display_name=name, retain_until=until)
    return lineup.gallery.create_subject(create, by=BY).id


def subjects(lineup: Lineup) -> list[int]:
    page = lineup.gallery.list_subjects(query=None, offset=0, limit=100)
    return [subject.id for subject in page.items]


def purge_records(lineup: Lineup, subject: int) -> list[str]:
    """The actions of the audit records naming `subject`."""
    with session_scope(lineup.sessions) as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .join(AuditSubject, AuditSubject.audit_id == AuditEvent.id)
                .where(AuditSubject.subject_id == subject, AuditEvent.action == "subject_purge")
            )
        )


def snapshot_ids(data_dir: Path, backbone: str) -> set[int] | None:
    """The face ids in the stored index of `backbone`'s version, or None if there is none."""
    with sqlite3.connect(data_dir / "lineup.db") as db:
        (weights,) = db.execute(
            "SELECT weights_hash FROM model_versions WHERE backbone = ?", (backbone,)
        ).fetchone()
    stored = IndexStore(data_dir / "index").load_snapshot(f"{backbone}@{weights}")
    return None if stored is None else {int(face) for face in stored[0].ids()}


def test_an_expired_subject_is_deleted_completely_and_a_kept_one_stays(
    open_at: LineupOpener, tmp_path: Path, faces_dir: Path
) -> None:
    data = tmp_path / "data"
    models = settings_for(data).models_dir
    with open_at(data) as lineup:
        expired = subject_until(lineup, "Expired", days=-1)
        kept = subject_until(lineup, "Kept", days=30)
        gone_face = enroll_emma(lineup, faces_dir, expired, 1)
        gone = gone_face.id
        stays = enroll_emma(lineup, faces_dir, kept, 2).id
        # A snapshot of another model version that still holds the expired face.
        lineup.gallery.reindex("dlib-resnet-cctv", device=CPU, models_dir=models)
        lineup.gallery.reindex("dlib-resnet", device=CPU, models_dir=models)
        assert gone in (snapshot_ids(data, "dlib-resnet-cctv") or set())
        files_before = gallery_files(data)

        report = purge(lineup.gallery, settings_for(data), sessions=lineup.sessions, by=SYSTEM)

        assert report.subjects == [expired]
        assert subjects(lineup) == [kept]
        its_files = {f"photos/{gone_face.photo_id}.jpg", f"chips/{gone}.png"}
        assert its_files <= files_before
        assert gallery_files(data) == files_before - its_files
        probe = lineup.gallery.probe(
            lfw_upload(faces_dir, "Emma_Watson", 1).data, k=5, by=BY, case=SEARCH_CASE
        )
        assert {c.face_id for face in probe.faces for c in face.candidates} == {stays}
        assert purge_records(lineup, expired) == ["subject_purge"]

        again = purge(lineup.gallery, settings_for(data), sessions=lineup.sessions, by=SYSTEM)
        assert again.subjects == [] and purge_records(lineup, expired) == ["subject_purge"]
    for version in ("dlib-resnet", "dlib-resnet-cctv"):
        assert gone not in (snapshot_ids(data, version) or set()), version
    with sqlite3.connect(data / "lineup.db") as db:
        assert db.execute("SELECT count(*) FROM faces WHERE id = ?", (gone,)).fetchone() == (0,)
        embeddings = db.execute("SELECT count(*) FROM embeddings WHERE face_id = ?", (gone,))
        assert embeddings.fetchone() == (0,)


def test_a_retention_extended_before_the_purge_keeps_the_subject(
    open_at: LineupOpener, tmp_path: Path
) -> None:
    with open_at(tmp_path / "data") as lineup:
        subject = subject_until(lineup, "Extended", days=-1)
        later = SubjectUpdate(retain_until=utc_now() + timedelta(days=7))
        lineup.gallery.update_subject(subject, later, by=BY)
        report = purge(
            lineup.gallery, settings_for(tmp_path / "data"), sessions=lineup.sessions, by=SYSTEM
        )
        assert report.subjects == []
        assert lineup.gallery.get_subject(subject).id == subject


def test_the_service_purges_on_its_own_thread(
    tmp_path: Path, embedder: FaceEmbedder, faces_dir: Path
) -> None:
    data = tmp_path / "data"
    settings = settings_for(data, purge_interval_hours=0.2 / 3600)  # every 0.2 s
    lineup = open_lineup(settings, embedder=embedder, with_housekeeping=True)
    try:
        subject = subject_until(lineup, "Soon", days=2 / 86400)  # two seconds from now
        enroll_emma(lineup, faces_dir, subject, 1)
        deadline = time.monotonic() + 60
        while subjects(lineup) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert subjects(lineup) == []
        assert lineup.gallery.stats().index_size == 0
        assert purge_records(lineup, subject) == ["subject_purge"]
    finally:
        lineup.close()


def test_the_housekeeper_runs_again_after_a_failure_and_stops_when_asked() -> None:
    runs: list[float] = []
    third_run = threading.Event()

    def work() -> None:
        runs.append(time.monotonic())
        if len(runs) >= 3:
            third_run.set()
        if len(runs) == 1:
            raise RuntimeError("the database is away")

    housekeeper = Housekeeper(work, interval_s=0.05, first_after_s=0)
    housekeeper.start()
    assert third_run.wait(30)
    housekeeper.stop()
    count = len(runs)
    time.sleep(0.2)
    assert len(runs) == count  # none after stop
