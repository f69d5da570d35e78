"""Which models this deployment can embed with, what their cards say, and which one is active.

For `lineup models list`: the built-in backbones and the fine-tuned models
under the models dir, each with the hash of its weights (the model version
it would make), its embedding size, the threshold its card calibrated for
those exact weights, how it was trained, and whether the database's active
model version is it. Nothing here loads a network.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.db.engine import create_engine_for, make_session_factory, session_scope
from app.gallery import model_versions
from app.gallery.calibration import UnreadableCard, read_card
from app.gallery.model_versions import ModelVersionInfo
from app.vision.backbones.dlib_backbone import DlibResnetBackbone, default_weights_path
from app.vision.backbones.edgeface import EdgeFaceBackbone, edgeface_weights_path
from app.vision.backbones.edgeface_network import ARCHITECTURES
from app.vision.backbones.facenet import FacenetBackbone
from app.vision.backbones.finetuned import WEIGHTS_FILE, finetuned_embedding_dim, finetuned_models
from app.vision.backbones.registry import BACKBONES
from app.vision.backbones.weights import WeightsMissing, weights_version


@dataclass(frozen=True)
class ModelEntry:
    """One model as the catalogue sees it; `weights_hash` is None where its weights are absent."""

    name: str
    kind: str  # "built-in" or "fine-tuned"
    weights_hash: str | None
    embedding_dim: int
    threshold: float | None
    base: str | None
    loss: str | None
    epochs: int | None
    active: bool
    note: str = ""


def list_models(settings: Settings) -> list[ModelEntry]:
    """The built-in backbones, then the fine-tuned models, then an active model that is gone."""
    active = active_version_in_database(settings)
    entries = [_built_in(settings, name, active) for name in BACKBONES]
    entries += [
        _finetuned(settings, name, active) for name in finetuned_models(settings.models_dir)
    ]
    if active is not None and not any(entry.active for entry in entries):
        entries.append(_missing(active, present={entry.name for entry in entries}))
    return entries


def active_version_in_database(settings: Settings) -> ModelVersionInfo | None:
    """The database's active model version; None without a database (nothing is created)."""
    if settings.database_url is None and not (settings.data_dir / "lineup.db").is_file():
        return None
    engine = create_engine_for(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            row = model_versions.active_version(session)
            return model_versions.snapshot(row) if row is not None else None
    except SQLAlchemyError:  # not migrated yet, or not reachable: no active version to show
        return None
    finally:
        engine.dispose()


def _built_in(settings: Settings, name: str, active: ModelVersionInfo | None) -> ModelEntry:
    note = ""
    dim, where = _built_in_weights(name)
    try:
        path = where(settings)
    except WeightsMissing as error:
        path, note = None, str(error)
    if path is None and not note:
        note = "weights not configured (see README: LINEUP_FACENET_*_WEIGHTS)"
    version = weights_version(path) if path is not None else None
    return _entry(settings, name, "built-in", version, dim, active, note=note)


def _built_in_weights(name: str) -> tuple[int, Callable[[Settings], Path | None]]:
    """A built-in's embedding size, and where its weights are (None: not configured)."""
    if name == "dlib-resnet":
        return DlibResnetBackbone.embedding_dim, lambda _settings: default_weights_path()
    if name in ARCHITECTURES:
        return EdgeFaceBackbone.embedding_dim, lambda settings: edgeface_weights_path(
            name, settings.models_dir
        )
    return FacenetBackbone.embedding_dim, lambda settings: settings.backbone_weights(name)


def _finetuned(settings: Settings, name: str, active: ModelVersionInfo | None) -> ModelEntry:
    directory = settings.models_dir / name
    version = weights_version(directory / WEIGHTS_FILE)
    return _entry(settings, name, "fine-tuned", version, finetuned_embedding_dim(directory), active)


def _entry(
    settings: Settings,
    name: str,
    kind: str,
    version: str | None,
    dim: int,
    active: ModelVersionInfo | None,
    *,
    note: str = "",
) -> ModelEntry:
    try:
        card = read_card(settings.models_dir, name)
    except UnreadableCard as error:
        card, note = {}, str(error)
    training: dict[str, Any] = card.get("training", {})
    same_weights = version is not None and card.get("weights_hash") == version
    threshold = card.get("calibration", {}).get("threshold") if same_weights else None
    is_active = active is not None and (active.backbone, active.weights_hash) == (name, version)
    if active is not None and active.backbone == name and not is_active:
        note = f"the active version has other weights ({active.weights_hash}); reindex"
    return ModelEntry(
        name=name,
        kind=kind,
        weights_hash=version,
        embedding_dim=dim,
        threshold=float(threshold) if threshold is not None else None,
        base=training.get("base", {}).get("backbone"),
        loss=training.get("loss"),
        epochs=training.get("epochs_completed"),
        active=is_active,
        note=note,
    )


def _missing(active: ModelVersionInfo, *, present: set[str]) -> ModelEntry:
    """The active version when no model here has its weights: the gallery will not start."""
    gone = "its weights changed" if active.backbone in present else "the model is gone"
    return ModelEntry(
        name=active.backbone,
        kind="missing",
        weights_hash=active.weights_hash,
        embedding_dim=active.embedding_dim,
        threshold=active.threshold,
        base=None,
        loss=None,
        epochs=None,
        active=True,
        note=f"active in the database, but {gone}: run `lineup reindex MODEL`",
    )
