"""The shapes of job requests and answers, for the admin API and the CLI."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.vision.backbones.registry import BACKBONES

JobKind = Literal["retrain", "reindex"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobOut(BaseModel):
    """A job as it stands: `progress` runs from 0 to 1, `message` says what it is doing."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: JobKind
    status: JobStatus
    progress: float
    message: str
    parameters: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None = Field(
        description="Last sign of life of the running job; stale means stuck."
    )


class ReindexRequest(BaseModel):
    """Re-embed every enrolled face with `backbone`, then switch searches to it."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = Field(description="Embedding network, by name (as LINEUP_BACKBONE).")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        if name not in BACKBONES:
            raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
        return name
