"""Opening a gallery from settings: model, database, model version and index, in that order."""

import logging

import faiss

from app.config import Settings
from app.db.engine import create_engine_for, make_session_factory, session_scope
from app.db.migrate import upgrade_database
from app.gallery import model_versions
from app.gallery.calibration import calibrated_threshold
from app.gallery.context import EnrollmentPolicy, GalleryContext, ModelRuntime
from app.gallery.files import FileStore
from app.gallery.index_sync import load_or_rebuild
from app.gallery.service import Gallery
from app.index import IndexStore
from app.vision.backbones.registry import create_backbone
from app.vision.detection import MtcnnDetector
from app.vision.device import resolve_device
from app.vision.embedder import FaceEmbedder

log = logging.getLogger(__name__)


class NoThreshold(RuntimeError):
    """The active model has no calibrated threshold and none was configured."""


def build_embedder(settings: Settings) -> FaceEmbedder:
    """The detector and the configured backbone on the configured device."""
    device = resolve_device(settings.device)
    backbone = create_backbone(
        settings.backbone, device=device, weights=settings.backbone_weights(settings.backbone)
    )
    detector = MtcnnDetector(device=device, min_face_size=settings.min_face_size)
    return FaceEmbedder(detector=detector, backbone=backbone)


def open_gallery(settings: Settings, *, embedder: FaceEmbedder | None = None) -> Gallery:
    """A ready gallery: migrations applied, model version active, index loaded or rebuilt."""
    # Probes run on many threads at once; FAISS's own OpenMP threads would only
    # fight them for the cores (a single flat search is fastest on one thread).
    faiss.omp_set_num_threads(1)
    embedder = embedder or build_embedder(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    upgrade_database(url)
    engine = create_engine_for(url)
    sessions = make_session_factory(engine)
    backbone = embedder.backbone
    threshold = calibrated_threshold(
        settings.models_dir, backbone=backbone.name, weights_hash=backbone.version
    )
    with session_scope(sessions) as session:
        row = model_versions.register(session, backbone, threshold=threshold)
        model_versions.activate(session, row)
        version = model_versions.snapshot(row)
    if version.threshold is None and settings.match_threshold is None:
        raise NoThreshold(
            f"{version.key} has no calibrated threshold in {settings.models_dir}; "
            "calibrate it (see README) or set LINEUP_MATCH_THRESHOLD"
        )
    index_store = IndexStore(settings.data_dir / "index")
    with session_scope(sessions) as session:
        index = load_or_rebuild(session, index_store, version)
    context = GalleryContext(
        sessions=sessions,
        files=FileStore(settings.data_dir),
        index_store=index_store,
        policy=EnrollmentPolicy(
            min_face_size=settings.min_enroll_face_size,
            min_probability=settings.min_enroll_probability,
            max_upload_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
        ),
        runtime=ModelRuntime(embedder=embedder, version=version, index=index),
        threshold_override=settings.match_threshold,
    )
    log.info("gallery open: %s, %d faces indexed", version.key, len(index))
    return Gallery(context, engine)
