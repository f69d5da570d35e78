"""Model cards: JSON files under `models/<name>/card.json` that say what a model is."""

import json
from pathlib import Path
from typing import Any

from app.gallery.calibration import CARD_FILE
from app.vision.backbones.base import Backbone


def read_card(models_dir: Path, name: str) -> dict[str, Any]:
    path = models_dir / name / CARD_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def record_calibration(models_dir: Path, backbone: Backbone, calibration: dict[str, Any]) -> Path:
    """Store `calibration` in the backbone's card, keyed to its exact weights."""
    card = read_card(models_dir, backbone.name)
    card.update(
        name=backbone.name,
        weights_hash=backbone.version,
        embedding_dim=backbone.embedding_dim,
        alignment=backbone.template.name,
        calibration=calibration,
    )
    path = models_dir / backbone.name / CARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path
