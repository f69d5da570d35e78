"""Calibrated match thresholds, read from model cards under `models/`.

A threshold is a property of one exact set of weights: it is looked up by
backbone name *and* weights hash, so a card never lends its threshold to a
model it was not measured on.
"""

import json
from pathlib import Path
from typing import Any

CARD_FILE = "card.json"


class UnreadableCard(ValueError):
    """A `card.json` that exists but is not a JSON object; the message names the file."""


def read_card(models_dir: Path, name: str) -> dict[str, Any]:
    """`models_dir/<name>/card.json` as a dict; {} when there is none."""
    path = models_dir / name / CARD_FILE
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise UnreadableCard(f"model card {path} cannot be read: {error}") from error
    if not isinstance(card, dict):
        raise UnreadableCard(f"model card {path} is not a JSON object")
    return card


def calibrated_threshold(models_dir: Path, *, backbone: str, weights_hash: str) -> float | None:
    """The threshold in `models_dir/<backbone>/card.json` if it was measured on these weights."""
    card = read_card(models_dir, backbone)
    if card.get("weights_hash") != weights_hash:
        return None
    threshold = card.get("calibration", {}).get("threshold")
    return float(threshold) if threshold is not None else None
