"""Opening a gallery over a migrated database: model version, model and index, in that order.

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
from collections.abc import Callable

import faiss
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db.engine import session_scope
from app.db.tables import ModelVersion
from app.gallery import model_versions
from app.gallery.calibration import calibrated_threshold
from app.gallery.changes import gallery_write
from app.gallery.context import EnrollmentPolicy, GalleryContext
from app.gallery.files import FileStore
from app.gallery.follower import IndexFollower
from app.gallery.index_sync import load_index
from app.gallery.model_versions import ModelVersionInfo
from app.gallery.recovery import embed_missing_faces
from app.gallery.runtime import ModelRuntime
from app.gallery.service import Gallery
from app.index import IndexStore
from app.vision.detection import FaceDetector
from app.vision.embedder import FaceEmbedder

log = logging.getLogger(__name__)


class StartupRefused(RuntimeError):
    """The gallery cannot open as configured; the message says what the operator should do."""


class _ActiveChanged(Exception):
    """Another process activated a version after this one chose which to load."""


# A switch by another process during start-up means loading once more; a gallery
# switching that often is refused rather than chased.
_OPEN_ATTEMPTS = 3


class NoThreshold(StartupRefused):
    """The active model has no calibrated threshold and none was configured."""


class ActiveModelUnavailable(StartupRefused):
    """The database's active model version cannot be loaded: model gone or weights changed."""


# Builds the embedder of a backbone by name (None: the configured one), sharing the given
# detector; the composition root's `build_embedder`, bound to the settings.
EmbedderBuilder = Callable[[str | None, FaceDetector | None], FaceEmbedder]


def open_gallery(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    build_embedder: EmbedderBuilder,
    embedder: FaceEmbedder | None = None,
    recover_with: str | None = None,
) -> Gallery:
    """A ready gallery over a migrated database: model version active, index loaded.

    `embedder` is used when its backbone is the active version's (or the
    gallery is fresh); otherwise only its detector is. `recover_with` names
    the model to switch to when the active one cannot be loaded: faces it has
    no embedding for are embedded now, from their stored chips and photos.
    """
    # Probes run on many threads at once; FAISS's own OpenMP threads would only
    # fight them for the cores (a single flat search is fastest on one thread).
    faiss.omp_set_num_threads(1)
    for _ in range(_OPEN_ATTEMPTS):
        chosen, recovering = _embedder_for(sessions, build_embedder, embedder, recover_with)
        try:
            version, seq = _register(settings, sessions, chosen, activate=not recovering)
            break
        except _ActiveChanged:
            continue  # another process switched while this one loaded: load its model
    else:
        raise StartupRefused("the active model kept changing while the gallery opened")
    embedder = chosen
    index_store = IndexStore(settings.data_dir / "index", kind=settings.index_kind)
    with session_scope(sessions) as session:
        index, _ = load_index(session, index_store, version)
    detector = embedder.detector
    follower = IndexFollower(
        sessions=sessions,
        index_store=index_store,
        runtime=ModelRuntime(embedder=embedder, version=version, index=index),
        applied_seq=seq,
        embedder_for=lambda other: _checked_embedder(
            build_embedder(other.backbone, detector), other
        ),
    )
    context = GalleryContext(
        sessions=sessions,
        files=FileStore(settings.data_dir),
        index_store=index_store,
        policy=EnrollmentPolicy(
            min_face_size=settings.min_enroll_face_size,
            min_probability=settings.min_enroll_probability,
            max_upload_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
            min_probe_face_size=settings.min_face_size,
        ),
        follower=follower,
        threshold_override=settings.match_threshold,
    )
    _catch_up(context, version, recovering=recovering)
    follower.save()
    log.info("gallery open: %s, %d faces indexed", version.key, len(index))
    return Gallery(context)


def _catch_up(context: GalleryContext, version: ModelVersionInfo, *, recovering: bool) -> None:
    """Embed the faces the version lacks; when recovering, activate it only then, so an
    interrupted recovery leaves the database pointing where it pointed before."""
    embedded = embed_missing_faces(context)
    if recovering:
        runtime = context.follower.current()
        with context.follower.switching() as install, gallery_write(context.sessions) as write:
            model_versions.activate(write.session, write.session.get_one(ModelVersion, version.id))
            write.model_activated(model_version_id=version.id)
            install(runtime, write.commit())
        log.warning("recovered onto %s: embedded %d faces it lacked", version.key, embedded)
    elif embedded:
        log.warning("embedded %d faces that %s lacked", embedded, version.key)


def _embedder_for(
    sessions: sessionmaker[Session],
    build_embedder: EmbedderBuilder,
    given: FaceEmbedder | None,
    recover_with: str | None,
) -> tuple[FaceEmbedder, bool]:
    """The embedder of the active version (or `given`, else the configured model, for a
    fresh gallery), and whether it is instead `recover_with`'s, because the active one
    cannot be loaded."""
    with session_scope(sessions) as session:
        row = model_versions.active_version(session)
        active = model_versions.snapshot(row) if row is not None else None
    if active is None:
        return given or build_embedder(None, None), False
    if given is not None and _is_version(given, active):
        return given, False
    detector = given.detector if given is not None else None
    try:
        embedder = _checked_embedder(build_embedder(active.backbone, detector), active)
    except (ValueError, OSError, ActiveModelUnavailable) as error:
        if recover_with is None:
            raise ActiveModelUnavailable(_unavailable_message(active, error)) from error
        log.warning("the active model %s cannot be loaded (%s)", active.key, error)
        return build_embedder(recover_with, detector), True
    return embedder, False


def _checked_embedder(embedder: FaceEmbedder, version: ModelVersionInfo) -> FaceEmbedder:
    """`embedder`, if its weights are `version`'s; `ActiveModelUnavailable` otherwise."""
    if not _is_version(embedder, version):
        raise ActiveModelUnavailable(
            f"the weights of {version.backbone!r} changed: they hash to "
            f"{embedder.backbone.version}, not {version.weights_hash}"
        )
    return embedder


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
) -> tuple[ModelVersionInfo, int]:
    """Register (and, for a fresh gallery, activate) `embedder`'s version; return it and
    the change it was verified at, which the follower starts from, so that a switch
    committed while the index loads is still followed. `NoThreshold` if it has none;
    `_ActiveChanged` if another version became active since it was chosen."""
    backbone = embedder.backbone
    threshold = calibrated_threshold(
        settings.models_dir, backbone=backbone.name, weights_hash=backbone.version
    )
    if threshold is None and settings.match_threshold is None:
        raise NoThreshold(
            f"{backbone.name}@{backbone.version} has no calibrated threshold in "
            f"{settings.models_dir}; calibrate it (see README) or set LINEUP_MATCH_THRESHOLD"
        )
    with gallery_write(sessions) as write:
        row = model_versions.register(write.session, backbone, threshold=threshold)
        if activate and not row.active:
            if model_versions.active_version_id(write.session) is not None:
                raise _ActiveChanged
            model_versions.activate(write.session, row)
            write.model_activated(model_version_id=row.id)
        version = model_versions.snapshot(row)
    return version, write.last_seq
