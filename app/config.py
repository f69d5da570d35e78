"""Lineup's settings: one class, read from `LINEUP_*` environment variables.

Nothing else in Lineup reads the environment. Values are validated when the
settings are built, so a typo fails at start-up with a message saying how to
fix it rather than on the first probe.
"""

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal, cast

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.access.rate_limits import RateLimit
from app.access.roles import Role
from app.vision.backbones.finetuned import finetuned_models
from app.vision.backbones.registry import BACKBONES, is_known_backbone
from app.vision.working_size import DEFAULT_DETECTION_MAX_SIDE

MiB = 1024 * 1024
DEFAULT_RATE_LIMITS = {
    Role.viewer: RateLimit(per_minute=1200, burst=200),
    Role.investigator: RateLimit(per_minute=120, burst=30),
    Role.enroller: RateLimit(per_minute=600, burst=100),
    Role.admin: RateLimit(per_minute=1200, burst=200),
}
"""A page of the gallery loads a chip per subject, so readers get the most; searching is the
act that needs a reason, and comes in ones."""


def is_loopback(host: str) -> bool:
    """Whether `host` is an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every knob of a Lineup deployment; the defaults run on one machine with no services."""

    model_config = SettingsConfigDict(
        env_prefix="LINEUP_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path("data"), description="Where the SQLite file, photos, chips and indexes live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite at DATA_DIR/lineup.db. "
        "Postgres: postgresql+psycopg://user:pass@host/db.",
    )
    models_dir: Path = Field(
        default=Path("models"), description="Fine-tuned checkpoints, each with its model card."
    )
    training_root: Path | None = Field(
        default=None,
        description="The one folder whose photo trees and split files POST /admin/retrain may "
        "read (relative paths there are taken from it; nothing outside it, symlinks followed); "
        "default: DATA_DIR/training-sets. `lineup train` is not confined to it.",
    )
    backbone: str = Field(
        default="dlib-resnet",
        description="Embedding network of a fresh gallery, by name: a built-in one or a "
        "fine-tuned model under MODELS_DIR. A gallery keeps the model it was last reindexed to.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where torch runs; auto = CUDA when present."
    )
    default_k: int = Field(default=5, ge=1, le=100, description="Candidates per probe face.")
    match_threshold: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity at or above which a candidate is a match; "
        "default: the active model's calibrated value.",
    )
    max_upload_bytes: int = Field(default=20 * MiB, ge=1024, description="Largest upload.")
    max_request_bytes: int | None = Field(
        default=None,
        ge=1024,
        description="Largest request body, all files and fields together (413 beyond it); "
        "default: 8 × MAX_UPLOAD_BYTES + 1 MiB, so that one enrollment carries up to eight "
        "full-size photos and follows MAX_UPLOAD_BYTES when it is raised, while no single "
        "request can fill the memory or the disk it is spooled to.",
    )
    body_read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait, in seconds, for the next part of a request body (408 and "
        "the connection closed beyond it), so stalled clients cannot hold connections open.",
    )
    max_pixels: int = Field(
        default=40_000_000, ge=10_000, description="Largest image, in pixels (bomb guard)."
    )
    min_face_size: int = Field(
        default=20, ge=8, description="Smallest face side, in pixels, that detection looks for."
    )
    detection_max_side: int = Field(
        default=DEFAULT_DETECTION_MAX_SIDE,
        ge=256,
        description="Longest side, in pixels, of the copy a photo is searched for faces on; "
        "larger photos are shrunk to it for detection (faces are still aligned from the full "
        "photo), so a photo shrunk s times is searched for faces from MIN_FACE_SIZE × s px.",
    )
    min_enroll_face_size: int = Field(
        default=40, ge=8, description="Smallest face side, in pixels, accepted for enrollment."
    )
    min_enroll_probability: float = Field(
        default=0.95, ge=0.0, le=1.0, description="Least detection probability for enrollment."
    )
    facenet_vggface2_weights: Path | None = Field(
        default=None, description="Local copy of 20180402-114759-vggface2.pt."
    )
    facenet_casia_weights: Path | None = Field(
        default=None, description="Local copy of 20180408-102900-casia-webface.pt."
    )
    host: str = Field(default="127.0.0.1", description="Address `lineup serve` listens on.")
    auth: Literal["on", "off"] = Field(
        default="on",
        description="`on`: every request needs an API key or a login session. `off` (every "
        "client an admin, every page under a banner saying so) is refused unless HOST is a "
        "loopback address, and requests from other addresses are refused.",
    )
    rate_limits: dict[Role, RateLimit] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS),
        description="Requests per key, by its role, as JSON: "
        '`{"investigator": {"per_minute": 120, "burst": 30}}`; roles left out keep their '
        "defaults (viewer 1200/200, investigator 120/30, enroller 600/100, admin 1200/200).",
    )
    login_rate_limit: RateLimit = Field(
        default=RateLimit(per_minute=10, burst=5),
        description="Failed logins per client address, as JSON like RATE_LIMITS' values.",
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A web session ends after this long unused."
    )
    audit_retention_days: int = Field(
        default=3650,
        ge=1,
        description="Audit records older than this are removed by the daily purge (which "
        "records that it did, and from which record the kept trail chains on).",
    )
    purge_interval_hours: float = Field(
        default=24.0,
        gt=0,
        description="How often the service runs the purge of expired subjects and old audit "
        "records.",
    )
    port: int = Field(default=8000, ge=1, le=65535, description="Port `lineup serve` listens on.")
    index_kind: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        default="auto",
        description="Vector index built for a gallery: `flat` (exact), `hnsw` or `ivf` "
        "(approximate shortlist, exact similarities), or `auto`: flat up to 200,000 faces, "
        "hnsw above.",
    )

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> "Settings":
        if self.auth == "off" and not is_loopback(self.host):
            raise ValueError(
                f"LINEUP_AUTH=off is refused while the service listens on {self.host}: anyone "
                "who can reach it would be an admin. Listen on 127.0.0.1, or keep auth on."
            )
        return self

    @model_validator(mode="after")
    def _rate_limits_for_every_role(self) -> "Settings":
        object.__setattr__(self, "rate_limits", {**DEFAULT_RATE_LIMITS, **self.rate_limits})
        return self

    @model_validator(mode="after")
    def _known_backbone(self) -> "Settings":
        if not is_known_backbone(self.backbone, models_dir=self.models_dir):
            tuned = ", ".join(finetuned_models(self.models_dir)) or "none found"
            raise ValueError(
                f"unknown backbone {self.backbone!r}; LINEUP_BACKBONE must be one of: "
                f"{', '.join(sorted(BACKBONES))} (built in), or the name of a fine-tuned "
                f"model folder under LINEUP_MODELS_DIR={self.models_dir} ({tuned})"
            )
        return self

    @model_validator(mode="after")
    def _weights_exist(self) -> "Settings":
        for setting, path in (
            ("LINEUP_FACENET_VGGFACE2_WEIGHTS", self.facenet_vggface2_weights),
            ("LINEUP_FACENET_CASIA_WEIGHTS", self.facenet_casia_weights),
        ):
            if path is not None and not path.is_file():
                raise ValueError(f"{setting}={path} is not a file; point it at the weights file")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'lineup.db'}"

    @property
    def resolved_training_root(self) -> Path:
        """The training root as an absolute path with symlinks resolved (it need not exist)."""
        return (self.training_root or self.data_dir / "training-sets").resolve()

    def backbone_weights(self, name: str) -> Path | None:
        """The weights file configured for backbone `name`, if it takes one."""
        field = _WEIGHTS_FIELDS.get(name)
        return None if field is None else cast(Path | None, getattr(self, field))

    @staticmethod
    def weights_variable(name: str) -> str | None:
        """The environment variable that points backbone `name` at its weights, if any."""
        field = _WEIGHTS_FIELDS.get(name)
        return None if field is None else f"LINEUP_{field.upper()}"


# The backbones whose weights cannot ship offline, and the setting naming their file.
_WEIGHTS_FIELDS = {
    "facenet-vggface2": "facenet_vggface2_weights",
    "facenet-casia": "facenet_casia_weights",
}


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
