"""Model cards: JSON files under `models/<name>/card.json` that say what a model is."""

import json
from pathlib import Path
from typing import Any

from app.gallery.calibration import CARD_FILE
from app.gallery.calibration import read_card as read_card
from app.vision.backbones.base import Backbone

# Measured on one exact set of weights; they no longer hold once the weights change.
_WEIGHTS_BOUND_SECTIONS = ("calibration", "metrics")


def record_calibration(models_dir: Path, backbone: Backbone, calibration: dict[str, Any]) -> Path:
    """Store `calibration` in the backbone's card, keyed to its exact weights."""
    return _record_measurement(models_dir, backbone, calibration=calibration)


def record_metrics(
    models_dir: Path,
    backbone: Backbone,
    metrics: dict[str, Any],
    *,
    baseline: dict[str, Any] | None = None,
) -> Path:
    """Store evaluation figures in the backbone's card, keyed to its exact weights.

    `baseline`, for a fine-tuned model, holds its base model's figures on the
    same data, so the card shows before and after side by side.
    """
    figures = metrics if baseline is None else {**metrics, "before": baseline}
    return _record_measurement(models_dir, backbone, metrics=figures)


def _record_measurement(models_dir: Path, backbone: Backbone, **sections: dict[str, Any]) -> Path:
    """Update the card with `sections` measured on `backbone`'s exact weights.

    Measurements of other weights (a threshold, metrics) are dropped first:
    the card never lends them to weights they were not measured on.
    """
    card = read_card(models_dir, backbone.name)
    if card.get("weights_hash") != backbone.version:
        for section in _WEIGHTS_BOUND_SECTIONS:
            card.pop(section, None)
    card.update(
        name=backbone.name,
        weights_hash=backbone.version,
        embedding_dim=backbone.embedding_dim,
        alignment=backbone.template.name,
        **sections,
    )
    return _write_card(models_dir, backbone.name, card)


def record_training(
    models_dir: Path,
    name: str,
    *,
    weights_hash: str,
    embedding_dim: int,
    alignment: str,
    training: dict[str, Any],
) -> Path:
    """Describe fine-tuned weights in `models/<name>/card.json`: what they came from and how.

    `training` holds the base weights, the training data, the loss and miner
    and the losses so far. A threshold or metrics measured on earlier weights
    are dropped, so the card never lends them to weights they were not
    measured on.
    """
    return _describe(models_dir, name, weights_hash, embedding_dim, alignment, training=training)


def record_provenance(
    models_dir: Path,
    name: str,
    *,
    weights_hash: str,
    embedding_dim: int,
    alignment: str,
    provenance: dict[str, Any],
) -> Path:
    """Describe pretrained weights brought in from elsewhere: where from, under which terms.

    As with training, figures measured on other weights are dropped.
    """
    return _describe(
        models_dir, name, weights_hash, embedding_dim, alignment, provenance=provenance
    )


def _describe(
    models_dir: Path,
    name: str,
    weights_hash: str,
    embedding_dim: int,
    alignment: str,
    **sections: dict[str, Any],
) -> Path:
    """Set what the weights are; a threshold or metrics of other weights go."""
    card = read_card(models_dir, name)
    if card.get("weights_hash") != weights_hash:
        for section in _WEIGHTS_BOUND_SECTIONS:
            card.pop(section, None)
    card.update(
        name=name,
        weights_hash=weights_hash,
        embedding_dim=embedding_dim,
        alignment=alignment,
        **sections,
    )
    return _write_card(models_dir, name, card)


def record_training_data(models_dir: Path, name: str, **facts: Any) -> Path:
    """Add `facts` (which split, which identities were held out) to the card's training data."""
    card = read_card(models_dir, name)
    card.setdefault("training", {}).setdefault("data", {}).update(facts)
    return _write_card(models_dir, name, card)


def _write_card(models_dir: Path, name: str, card: dict[str, Any]) -> Path:
    path = models_dir / name / CARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path
