"""Calibrated match thresholds, read from model cards under `models/`.

A threshold is a property of one exact set of weights: it is looked up by
backbone name *and* weights hash, so a card never lends its threshold to a
model it was not measured on.
"""

import json
from pathlib import Path

CARD_FILE = "card.json"


def calibrated_threshold(models_dir: Path, *, backbone: str, weights_hash: str) -> float | None:
    """The threshold in `models_dir/<backbone>/card.json` if it was measured on these weights."""
    card_path = models_dir / backbone / CARD_FILE
    if not card_path.is_file():
        return None
    card = json.loads(card_path.read_text())
    if card.get("weights_hash") != weights_hash:
        return None
    threshold = card.get("calibration", {}).get("threshold")
    return float(threshold) if threshold is not None else None
