"""The composition root: the one place that builds Lineup's parts from its settings.

`lineup serve` (through `app.main`'s lifespan) and every CLI command open
Lineup here: the database (migrated first, one process at a time), the
detector and backbones, the gallery (its files, index and change-log
follower), the start-up sweep and, for the service, the job worker and the
periodic purge. Nothing
else constructs these, so every front door runs on the same parts.
"""

import logging
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.audit.actor import SYSTEM
from app.config import Settings
from app.db.engine import create_engine_for, make_session_factory
from app.db.migrate import upgrade_database
from app.gallery.service import Gallery
from app.gallery.startup import open_gallery
from app.jobs.housekeeping import Housekeeper, start_housekeeping
from app.jobs.service import JobService, start_jobs
from app.vision.backbones.registry import create_backbone
from app.vision.detection import FaceDetector, MtcnnDetector
from app.vision.device import resolve_device
from app.vision.embedder import FaceEmbedder

log = logging.getLogger(__name__)


@dataclass
class Lineup:
    """Everything one process opened; `close` releases it in reverse order."""

    engine: Engine
    sessions: sessionmaker[Session]
    gallery: Gallery
    jobs: JobService | None = field(default=None)
    housekeeping: Housekeeper | None = field(default=None)

    def close(self) -> None:
        """Stop the purge and the job worker (either may still use the gallery), save the
        index, release the database."""
        try:
            if self.housekeeping is not None:
                self.housekeeping.stop()
            if self.jobs is not None:
                self.jobs.stop()
            self.gallery.close()
        finally:
            self.engine.dispose()


def open_lineup(
    settings: Settings,
    *,
    embedder: FaceEmbedder | None = None,
    recover_with: str | None = None,
    with_jobs: bool = False,
    with_housekeeping: bool = False,
) -> Lineup:
    """Migrate, open the gallery, sweep what a killed process left, start jobs and the
    periodic purge if asked.

    `embedder` may share an already loaded model (tests, workers); `recover_with`
    names the model to recover onto when the active one cannot be loaded.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_database(settings)
    try:
        sessions = make_session_factory(engine)
        gallery = open_gallery(
            settings,
            sessions=sessions,
            build_embedder=partial(build_embedder, settings),
            embedder=embedder,
            recover_with=recover_with,
        )
        gallery.sweep()
        jobs = start_jobs(gallery, settings, sessions=sessions) if with_jobs else None
        housekeeping = (
            start_housekeeping(gallery, settings, engine=engine, sessions=sessions, by=SYSTEM)
            if with_housekeeping
            else None
        )
    except BaseException:
        engine.dispose()
        raise
    return Lineup(
        engine=engine, sessions=sessions, gallery=gallery, jobs=jobs, housekeeping=housekeeping
    )


def open_database(settings: Settings) -> Engine:
    """The engine of the configured database, brought to the current schema first."""
    url = settings.resolved_database_url
    upgrade_database(url)
    return create_engine_for(url)


def build_detector(settings: Settings) -> FaceDetector:
    """MTCNN on the configured device, with the configured smallest face and working size."""
    return MtcnnDetector(
        device=resolve_device(settings.device),
        min_face_size=settings.min_face_size,
        max_side=settings.detection_max_side,
    )


def build_embedder(
    settings: Settings, backbone: str | None = None, detector: FaceDetector | None = None
) -> FaceEmbedder:
    """The detector (unless one is given) and `backbone` (default: the configured one)."""
    name = backbone or settings.backbone
    model = create_backbone(
        name,
        device=resolve_device(settings.device),
        weights=settings.backbone_weights(name),
        models_dir=settings.models_dir,
    )
    return FaceEmbedder(detector=detector or build_detector(settings), backbone=model)
