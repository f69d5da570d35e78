"""Registering the backbone in use as a model version and making it the active one."""

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.tables import ModelVersion
from app.vision.backbones.base import Backbone


@dataclass(frozen=True)
class ModelVersionInfo:
    """A detached snapshot of a `model_versions` row: what made a set of embeddings."""

    id: int
    backbone: str
    weights_hash: str
    embedding_dim: int
    alignment: str
    threshold: float | None

    @property
    def key(self) -> str:
        """The name the index files of this version are stored under."""
        return f"{self.backbone}@{self.weights_hash}"


def snapshot(row: ModelVersion) -> ModelVersionInfo:
    return ModelVersionInfo(
        id=row.id,
        backbone=row.backbone,
        weights_hash=row.weights_hash,
        embedding_dim=row.embedding_dim,
        alignment=row.alignment,
        threshold=row.threshold,
    )


def register(session: Session, backbone: Backbone, *, threshold: float | None) -> ModelVersion:
    """The row for `backbone`'s exact weights, created if new; a known threshold is recorded."""
    row = session.scalars(
        select(ModelVersion).where(
            ModelVersion.backbone == backbone.name,
            ModelVersion.weights_hash == backbone.version,
        )
    ).one_or_none()
    if row is None:
        row = ModelVersion(
            backbone=backbone.name,
            weights_hash=backbone.version,
            embedding_dim=backbone.embedding_dim,
            alignment=backbone.template.name,
        )
        session.add(row)
    if threshold is not None:
        row.threshold = threshold
    session.flush()
    return row


def activate(session: Session, row: ModelVersion) -> None:
    """Make `row` the one active version (the database allows only one)."""
    session.execute(update(ModelVersion).where(ModelVersion.id != row.id).values(active=False))
    session.flush()
    row.active = True
    session.flush()


def active_version(session: Session) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.active)).one_or_none()


def active_version_id(session: Session) -> int | None:
    """The id of the version searches use now (None for a gallery never opened)."""
    return session.scalar(select(ModelVersion.id).where(ModelVersion.active))
