"""What the admin page lists as models: the backbones Lineup knows, and the model cards on disk.

A model card is `<models_dir>/<name>/card.json`. Cards are shown as they are
written, whatever fields they carry, so a card with new fields (a fine-tuned
checkpoint's training data, its held-out metrics) needs no change here.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.gallery.calibration import UnreadableCard, read_card
from app.vision.backbones.finetuned import finetuned_models
from app.vision.backbones.registry import BACKBONES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    active: bool
    needs_weights: str | None
    """The setting that must point at a weights file before this backbone can run, if any."""


@dataclass(frozen=True)
class ModelCard:
    name: str
    path: Path
    content: Any
    """The card's JSON, or None when it could not be read (`problem` says why)."""
    problem: str | None = None


def list_backbones(settings: Settings, *, active: str) -> list[BackboneEntry]:
    """Every registered backbone; which is active, and which still lack their weights."""
    entries = []
    for name in sorted(BACKBONES):
        setting = Settings.weights_variable(name)
        missing = setting if setting and settings.backbone_weights(name) is None else None
        entries.append(BackboneEntry(name=name, active=name == active, needs_weights=missing))
    return entries


def reindex_targets(models_dir: Path) -> list[str]:
    """What a reindex may switch to, as `create_backbone` finds them: the built-in
    backbones, then the folders holding fine-tuned weights (a card alone is not a model)."""
    return sorted(BACKBONES) + finetuned_models(models_dir)


def list_model_cards(models_dir: Path) -> list[ModelCard]:
    """Each `<models_dir>/*/card.json`, by folder name; an unreadable card says why."""
    if not models_dir.is_dir():
        return []
    return [_read_card(models_dir, path) for path in sorted(models_dir.glob("*/card.json"))]


def _read_card(models_dir: Path, path: Path) -> ModelCard:
    name = path.parent.name
    try:
        return ModelCard(name=name, path=path, content=read_card(models_dir, name))
    except UnreadableCard as error:
        log.warning("%s", error)
        return ModelCard(name=name, path=path, content=None, problem=str(error))
