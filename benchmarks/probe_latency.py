"""Benchmark end-to-end probe latency over real HTTP, for galleries of growing size.

Run with `uv run python benchmarks/probe_latency.py [--sizes 1000,100000] [--repeats 50]`
(set LINEUP_MATCH_THRESHOLD until the model card has a calibrated threshold).

The gallery is real where it matters: the 12 lfw_mini people are enrolled through
the `Gallery` (photos 1–3, largest face), and the probe is a single-face lfw_mini
photo none of them was enrolled with. The rest of each gallery is random unit
vectors stored as ordinary subject/photo/face/embedding rows under the active
model version; flat search costs the same whatever the vectors hold, and the
rows are never served. The app is then restarted, so its index is rebuilt from
the database (the saved index lacks the new rows; the start-up time is printed,
and a bare rebuild is timed too), and probes are sent one at a time with httpx
to uvicorn on a local port, with an admin API key and a case reference as every
search needs. An in-process split of one probe (decode, detect, align + embed,
search, and the audit record each probe commits in its own transaction) shows
where the time goes; the search stage runs on the index the bare rebuild made
from the same rows, since the gallery's own is private to it.
"""

import argparse
import hashlib
import logging
import math
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import uvicorn
from machine import Latency, describe
from numpy.typing import NDArray
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from app.access.keys import create_key
from app.access.rate_limits import RateLimit
from app.access.roles import Role
from app.audit.actor import SYSTEM, Case, local_actor
from app.audit.trail import record
from app.composition import build_embedder, open_lineup
from app.config import Settings
from app.db.engine import create_engine_for, make_session_factory, session_scope
from app.db.tables import Embedding, Face, ModelVersion, Photo, Subject
from app.db.vectors import vector_to_bytes
from app.gallery.enroll import Upload
from app.gallery.gallery_index import GalleryIndex
from app.gallery.index_sync import rebuild_with_subjects
from app.gallery.model_versions import snapshot
from app.gallery.service import Gallery
from app.main import create_app
from app.schemas import ProbeResult, SubjectCreate
from app.vision.device import resolve_device
from app.vision.embedder import FaceEmbedder
from app.vision.images import decode_image

logger = logging.getLogger("benchmarks.probe_latency")

ROOT = Path(__file__).resolve().parents[1]
LFW_MINI = ROOT.parent / "shared" / "faces" / "lfw_mini"
ENROLLED_PHOTOS = (1, 2, 3)
PROBE_CANDIDATES = (4, 5)
INSERT_BATCH = 10_000
WARMUP = 5
K = 5
ACTOR = local_actor("benchmark")
CASE = Case(reference="BENCHMARK")


def describe_machine_and_model(settings: Settings) -> None:
    """What the figures were measured on: CPU, load, library versions and the torch device."""
    logger.info("%s", describe())
    logger.info(
        "device     %s (LINEUP_DEVICE=%s)", resolve_device(settings.device), settings.device
    )


def unit_vectors(rng: np.random.Generator, count: int, dim: int) -> NDArray[np.float32]:
    """Random float32 rows of unit length: as costly to search as real embeddings."""
    raw = rng.standard_normal((count, dim), dtype=np.float32)
    return np.asarray(raw / np.linalg.norm(raw, axis=1, keepdims=True), dtype=np.float32)


def enroll_real_people(gallery: Gallery) -> int:
    """The lfw_mini people, photos 1–3 each, through the gallery; returns faces enrolled."""
    enrolled = 0
    for folder in sorted(path for path in LFW_MINI.iterdir() if path.is_dir()):
        subject = gallery.create_subject(
            SubjectCreate(display_name=folder.name.replace("_", " "), external_id=folder.name),
            by=ACTOR,
        )
        uploads = [
            Upload(photo.name, photo.read_bytes())
            for photo in (folder / f"{folder.name}_{n:04d}.jpg" for n in ENROLLED_PHOTOS)
        ]
        enrolled += gallery.enroll(subject.id, uploads, by=ACTOR, policy="largest").enrolled
    return enrolled


def single_face_probe(embedder: FaceEmbedder) -> Path:
    """An lfw_mini photo (250×250) of an enrolled person, not enrolled itself, with one face."""
    for folder in sorted(path for path in LFW_MINI.iterdir() if path.is_dir()):
        for number in PROBE_CANDIDATES:
            photo = folder / f"{folder.name}_{number:04d}.jpg"
            if len(embedder.detect(decode_image(photo.read_bytes()))) == 1:
                return photo
    raise RuntimeError(f"no single-face probe photo in {LFW_MINI}")


def face_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Embedding)) or 0


def add_synthetic_faces(
    engine: Engine, rng: np.random.Generator, *, count: int, faces_per_subject: int
) -> None:
    """`count` random unit vectors as subjects with `faces_per_subject` photos/faces each."""
    with engine.begin() as connection:
        version = connection.execute(select(ModelVersion).where(ModelVersion.active)).one()
        first_subject, first_photo, first_face = (
            (connection.scalar(select(func.max(column))) or 0) + 1
            for column in (Subject.id, Photo.id, Face.id)
        )
        vectors = unit_vectors(rng, count, version.embedding_dim)
        subjects = [
            {"id": first_subject + s, "display_name": "Synthetic", "external_id": None}
            for s in range(math.ceil(count / faces_per_subject))
        ]
        photos, faces, embeddings = [], [], []
        for offset, vector in enumerate(vectors):
            subject_id = first_subject + offset // faces_per_subject
            photo_id, face_id = first_photo + offset, first_face + offset
            photos.append(_photo_row(photo_id, subject_id))
            faces.append(_face_row(face_id, photo_id, subject_id))
            embeddings.append(
                {
                    "face_id": face_id,
                    "model_version_id": version.id,
                    "vector": vector_to_bytes(vector),
                }
            )
        tables = ((Subject, subjects), (Photo, photos), (Face, faces), (Embedding, embeddings))
        for table, rows in tables:
            for start in range(0, len(rows), INSERT_BATCH):
                connection.execute(insert(table), rows[start : start + INSERT_BATCH])


def _photo_row(photo_id: int, subject_id: int) -> dict[str, Any]:
    return {
        "id": photo_id,
        "subject_id": subject_id,
        "sha256": f"{photo_id:064x}",  # unique per subject, as the table demands
        "original_filename": "synthetic.jpg",
        "stored_path": f"photos/synthetic-{photo_id}.jpg",  # never served
        "size_bytes": 0,
        "width": 250,
        "height": 250,
    }


def _face_row(face_id: int, photo_id: int, subject_id: int) -> dict[str, Any]:
    return {
        "id": face_id,
        "photo_id": photo_id,
        "subject_id": subject_id,
        "x1": 70.0,
        "y1": 60.0,
        "x2": 180.0,
        "y2": 190.0,
        "landmarks": [[0.0, 0.0]] * 5,
        "detection_probability": 1.0,
        "quality": 1.0,
        "chip_path": f"chips/synthetic-{face_id}.png",
    }


def time_rebuild(engine: Engine) -> tuple[GalleryIndex, float]:
    """Rebuild the active version's index from its rows alone: (the index, seconds)."""
    with session_scope(make_session_factory(engine)) as session:
        version = snapshot(session.scalars(select(ModelVersion).where(ModelVersion.active)).one())
        start = time.perf_counter()
        index, subjects = rebuild_with_subjects(session, version)
        return GalleryIndex(index, subjects), time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port: int = probe_socket.getsockname()[1]
        return port


class RunningApp(NamedTuple):
    url: str
    key: str
    """An admin API key, made for this run."""
    gallery: Gallery
    sessions: sessionmaker[Session]


@contextmanager
def running_app(
    settings: Settings, embedder: FaceEmbedder, *, key_name: str
) -> Iterator[RunningApp]:
    """The app under uvicorn on a free local port, with its URL, key, gallery and sessions."""
    app = create_app(settings, embedder=embedder)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    started = time.perf_counter()
    thread.start()
    while not server.started:  # set after the lifespan (gallery open, index rebuild) is done
        if not thread.is_alive():
            raise RuntimeError("the app did not start; see the log above")
        time.sleep(0.01)
    logger.info(
        "app start-up, model preloaded, index rebuilt: %.2f s", time.perf_counter() - started
    )
    try:
        key = create_key(app.state.sessions, name=key_name, role=Role.admin, by=SYSTEM).key
        yield RunningApp(f"http://127.0.0.1:{port}", key, app.state.gallery, app.state.sessions)
    finally:
        server.should_exit = True
        thread.join()


def time_http_probes(
    url: str, key: str, photo: Path, *, repeats: int
) -> tuple[Latency, dict[str, Any]]:
    """Sequential POST /probe calls after a warm-up; returns latency and the last answer."""
    data = photo.read_bytes()
    files = {"image": (photo.name, data, "image/jpeg")}
    form = {"case_reference": CASE.reference}
    headers = {"Authorization": f"Bearer {key}"}
    timings = []
    with httpx.Client(base_url=url, headers=headers, timeout=60.0) as client:
        for attempt in range(WARMUP + repeats):
            start = time.perf_counter()
            response = client.post("/probe", files=files, data=form, params={"k": K})
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            if attempt >= WARMUP:
                timings.append(elapsed)
    answer: dict[str, Any] = response.json()
    return Latency.of(timings), answer


def write_probe_record(sessions: sessionmaker[Session], data: bytes, answer: ProbeResult) -> None:
    """The audit record of probing `data`, in its own transaction, as `Gallery.probe` writes it."""
    faces = [
        {
            "decision": face.decision,
            "candidates": [
                {"subject_id": c.subject.id, "face_id": c.face_id, "similarity": c.similarity}
                for c in face.candidates
            ],
        }
        for face in answer.faces
    ]
    with session_scope(sessions) as session:
        record(
            session,
            ACTOR,
            "probe",
            case=CASE,
            subject_ids=(c.subject.id for face in answer.faces for c in face.candidates),
            details={
                "image_sha256": [hashlib.sha256(data).hexdigest()],
                "k": answer.k,
                "threshold": answer.threshold,
                "faces": faces,
            },
            model_version_id=answer.model_version.id,
        )


def time_stages(
    app: RunningApp, embedder: FaceEmbedder, index: GalleryIndex, photo: Path, *, repeats: int
) -> dict[str, Latency]:
    """One probe's steps, in process: where the time goes (`gallery.probe` is all of them)."""
    data = photo.read_bytes()
    names = ("decode", "detect", "align+embed", "search", "audit write", "gallery.probe")
    stages: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        t0 = time.perf_counter()
        image = decode_image(data)
        t1 = time.perf_counter()
        detections = embedder.detect(image)
        t2 = time.perf_counter()
        embeddings = embedder.embed_chips(
            [embedder.align(image, detection) for detection in detections]
        )
        t3 = time.perf_counter()
        for embedding in embeddings:
            index.best_subjects(embedding, k=K)
        t4 = time.perf_counter()
        answer = app.gallery.probe(data, k=K, by=ACTOR, case=CASE)
        t5 = time.perf_counter()
        write_probe_record(app.sessions, data, answer)
        t6 = time.perf_counter()
        for name, seconds in zip(
            stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5, t5 - t4), strict=True
        ):
            stages[name].append(seconds)
    return {name: Latency.of(seconds) for name, seconds in stages.items()}


def bench_size(
    settings: Settings,
    embedder: FaceEmbedder,
    index: GalleryIndex,
    photo: Path,
    *,
    size: int,
    repeats: int,
) -> None:
    """Restart the app on a gallery of `size` faces; log HTTP latency and the in-process split."""
    with running_app(settings, embedder, key_name=f"benchmark-{size}") as app:
        logger.info("N=%-7d faces in the index: %d", size, app.gallery.stats().index_size)
        latency, answer = time_http_probes(app.url, app.key, photo, repeats=repeats)
        best = answer["faces"][0]["candidates"][0]
        logger.info(
            "N=%-7d HTTP POST /probe, %d sequential: %s  (top: %s, %.3f)",
            size,
            repeats,
            latency,
            best["subject"]["external_id"],
            best["similarity"],
        )
        for name, stage in time_stages(app, embedder, index, photo, repeats=repeats).items():
            logger.info("N=%-7d   in process %-13s %s", size, name, stage)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: sorted(int(part) for part in text.split(",")),
        default=[1_000, 100_000],
        help="gallery sizes in faces, comma-separated (default 1000,100000)",
    )
    parser.add_argument("--repeats", type=int, default=50, help="timed probes per size")
    parser.add_argument("--faces-per-subject", type=int, default=5)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def grow_gallery(
    engine: Engine, rng: np.random.Generator, *, size: int, faces_per_subject: int
) -> GalleryIndex:
    """Top the gallery up to `size` faces with synthetic ones; time a bare rebuild, return it."""
    missing = size - face_count(engine)
    if missing > 0:
        start = time.perf_counter()
        add_synthetic_faces(engine, rng, count=missing, faces_per_subject=faces_per_subject)
        logger.info(
            "N=%-7d inserted %d synthetic faces: %.1f s", size, missing, time.perf_counter() - start
        )
    index, seconds = time_rebuild(engine)
    logger.info(
        "N=%-7d index rebuild alone from %d stored embeddings: %.2f s", size, len(index), seconds
    )
    # The index the app saved last lacks the new rows: the restart below rebuilds it.
    return index


def build_real_gallery(settings: Settings) -> tuple[FaceEmbedder, Path]:
    """Load the model, enroll the real people; returns the embedder and the probe photo."""
    start = time.perf_counter()
    embedder = build_embedder(settings)
    logger.info("model load: %.2f s", time.perf_counter() - start)
    lineup = open_lineup(settings, embedder=embedder)
    try:
        real = enroll_real_people(lineup.gallery)
    finally:
        lineup.close()
    photo = single_face_probe(embedder)
    logger.info("real faces enrolled: %d; probe photo: %s", real, photo.name)
    return embedder, photo


def main(argv: list[str]) -> None:
    """Describe the machine, build the gallery, then grow it size by size."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lineup-probe-bench-") as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            models_dir=ROOT / "models",
            device=args.device,
            # Every request takes a token from its key's bucket; the admin defaults would
            # throttle these back-to-back probes, and the wait would pass for latency.
            rate_limits={Role.admin: RateLimit(per_minute=600_000, burst=100_000)},
        )
        describe_machine_and_model(settings)
        embedder, photo = build_real_gallery(settings)
        engine = create_engine_for(settings.resolved_database_url)
        rng = np.random.default_rng(args.seed)
        for size in args.sizes:
            index = grow_gallery(engine, rng, size=size, faces_per_subject=args.faces_per_subject)
            bench_size(settings, embedder, index, photo, size=size, repeats=args.repeats)
        engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
