"""Opening a gallery from settings: database, model version, model and index, in that order.

The database says which model version the gallery searches with: the one
active when it last ran (the last reindex's). That version is loaded again by
its backbone name, and its weights must hash to what the database recorded;
`LINEUP_BACKBONE` only chooses the model of a fresh gallery. Falling back to
the configured model instead would quietly drop every face enrolled since the
last reindex out of the searches, so when the active model is gone or its
weights changed, start-up fails (`ActiveModelUnavailable`) and says how to fix
it: restore the weights, or re-embed the gallery with another model
(`lineup reindex MODEL`, which opens the gallery with `recover_with`).

Every open also embeds the faces the active version has no embedding for:
a service still running on the old version while `lineup reindex` switched
the database enrolls under the old one, and those faces must not be lost.
"""

import logging

import faiss
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db.engine import create_engine_for, make_session_factory, session_scope
from app.db.migrate import upgrade_database
from app.db.tables import ModelVersion
from app.gallery import model_versions
from app.gallery.calibration import calibrated_threshold
from app.gallery.context import EnrollmentPolicy, GalleryContext, ModelRuntime
from app.gallery.files import FileStore
from app.gallery.index_sync import load_or_rebuild
from app.gallery.model_versions import ModelVersionInfo
from app.gallery.recovery import embed_missing_faces
from app.gallery.service import Gallery
from app.index import IndexStore
from app.vision.backbones.registry import create_backbone
from app.vision.detection import FaceDetector, MtcnnDetector
from app.vision.device import resolve_device
from app.vision.embedder import FaceEmbedder

log = logging.getLogger(__name__)


class StartupRefused(RuntimeError):
    """The gallery cannot open as configured; the message says what the operator should do."""


class NoThreshold(StartupRefused):
    """The active model has no calibrated threshold and none was configured."""


class ActiveModelUnavailable(StartupRefused):
    """The database's active model version cannot be loaded: model gone or weights changed."""


def build_detector(settings: Settings) -> FaceDetector:
    """MTCNN on the configured device, with the configured smallest face."""
    return MtcnnDetector(
        device=resolve_device(settings.device), min_face_size=settings.min_face_size
    )


def build_embedder(
    settings: Settings, *, backbone: str | None = None, detector: FaceDetector | None = None
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


def open_gallery(
    settings: Settings, *, embedder: FaceEmbedder | None = None, recover_with: str | None = None
) -> Gallery:
    """A ready gallery: migrations applied, model version active, index loaded or rebuilt.

    `embedder` is used when its backbone is the active version's (or the
    gallery is fresh); otherwise only its detector is. `recover_with` names
    the model to switch to when the active one cannot be loaded: faces it has
    no embedding for are embedded now, from their stored chips and photos.
    """
    # Probes run on many threads at once; FAISS's own OpenMP threads would only
    # fight them for the cores (a single flat search is fastest on one thread).
    faiss.omp_set_num_threads(1)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    upgrade_database(url)
    engine = create_engine_for(url)
    sessions = make_session_factory(engine)
    try:
        embedder, recovering = _embedder_for(settings, sessions, embedder, recover_with)
        version = _register(settings, sessions, embedder, activate=not recovering)
        index_store = IndexStore(settings.data_dir / "index")
        with session_scope(sessions) as session:
            index = load_or_rebuild(session, index_store, version)
    except BaseException:
        engine.dispose()
        raise
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
    # Faces another process enrolled under an older version after this one became
    # active (a `lineup reindex` beside a running service) are embedded now, or
    # they would drop out of every search.
    embedded = embed_missing_faces(context)
    if recovering:
        # Activated only once every face has an embedding, so that an interrupted
        # recovery leaves the database pointing at the version it pointed at before.
        with session_scope(sessions) as session:
            model_versions.activate(session, session.get_one(ModelVersion, version.id))
        log.warning("recovered onto %s: embedded %d faces it lacked", version.key, embedded)
    elif embedded:
        log.warning("embedded %d faces that %s lacked", embedded, version.key)
    log.info("gallery open: %s, %d faces indexed", version.key, len(index))
    return Gallery(context, engine)


def _embedder_for(
    settings: Settings,
    sessions: sessionmaker[Session],
    given: FaceEmbedder | None,
    recover_with: str | None,
) -> tuple[FaceEmbedder, bool]:
    """The embedder of the active version (or of the configured model for a fresh gallery),
    and whether it is instead `recover_with`'s, because the active one cannot be loaded."""
    with session_scope(sessions) as session:
        row = model_versions.active_version(session)
        active = model_versions.snapshot(row) if row is not None else None
    if active is None:
        return given or build_embedder(settings), False
    if given is not None and _is_version(given, active):
        return given, False
    detector = given.detector if given is not None else None
    try:
        embedder = build_embedder(settings, backbone=active.backbone, detector=detector)
        if not _is_version(embedder, active):
            raise ActiveModelUnavailable(
                f"the weights of {active.backbone!r} changed: they hash to "
                f"{embedder.backbone.version}, not {active.weights_hash}"
            )
    except (ValueError, OSError, ActiveModelUnavailable) as error:
        if recover_with is None:
            raise ActiveModelUnavailable(_unavailable_message(active, error)) from error
        log.warning("the active model %s cannot be loaded (%s)", active.key, error)
        return build_embedder(settings, backbone=recover_with, detector=detector), True
    if active.backbone != settings.backbone:
        log.info("keeping %s, the gallery's active model, over LINEUP_BACKBONE", active.key)
    return embedder, False


def _is_version(embedder: FaceEmbedder, version: ModelVersionInfo) -> bool:
    backbone = embedder.backbone
    return (backbone.name, backbone.version) == (version.backbone, version.weights_hash)


def _unavailable_message(active: ModelVersionInfo, error: Exception) -> str:
    return (
        f"the gallery searches with model version {active.key}, which cannot be loaded: "
        f"{error}. Restore that model's weights (hash {active.weights_hash}), or re-embed "
        "the gallery with another model: `lineup reindex MODEL` (e.g. dlib-resnet)"
    )


def _register(
    settings: Settings,
    sessions: sessionmaker[Session],
    embedder: FaceEmbedder,
    *,
    activate: bool,
) -> ModelVersionInfo:
    """Register (and activate) `embedder`'s version; first `NoThreshold` if it has none."""
    backbone = embedder.backbone
    threshold = calibrated_threshold(
        settings.models_dir, backbone=backbone.name, weights_hash=backbone.version
    )
    if threshold is None and settings.match_threshold is None:
        raise NoThreshold(
            f"{backbone.name}@{backbone.version} has no calibrated threshold in "
            f"{settings.models_dir}; calibrate it (see README) or set LINEUP_MATCH_THRESHOLD"
        )
    with session_scope(sessions) as session:
        row = model_versions.register(session, backbone, threshold=threshold)
        if activate:
            model_versions.activate(session, row)
        return model_versions.snapshot(row)
