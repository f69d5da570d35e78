"""What every job runner receives, and the shape of a runner."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.gallery.reindex import Cancelled, Progress
from app.gallery.service import Gallery


@dataclass(frozen=True)
class JobContext:
    """What a runner may use: the app's gallery and its settings (device, weights, models)."""

    gallery: Gallery
    settings: Settings


JobRunner = Callable[[JobContext, dict[str, Any], Progress, Cancelled], dict[str, Any]]
