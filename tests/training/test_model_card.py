"""A fine-tuned model's card: what made its weights, and no figures from other weights."""

import json
from pathlib import Path

from app.gallery.calibration import calibrated_threshold
from app.training.model_card import read_card, record_training


def record(models_dir: Path, weights_hash: str) -> Path:
    return record_training(
        models_dir,
        "finetuned",
        weights_hash=weights_hash,
        embedding_dim=64,
        alignment="dlib-150",
        training={"loss": "triplet", "epoch_losses": [0.5, 0.4]},
    )


def test_the_card_describes_the_weights_and_their_training(tmp_path: Path) -> None:
    path = record(tmp_path, "aaaa")
    assert path == tmp_path / "finetuned" / "card.json"
    card = read_card(tmp_path, "finetuned")
    assert card["weights_hash"] == "aaaa" and card["embedding_dim"] == 64
    assert card["training"]["epoch_losses"] == [0.5, 0.4]


def test_new_weights_drop_the_threshold_measured_on_old_ones(tmp_path: Path) -> None:
    path = record(tmp_path, "aaaa")
    card = json.loads(path.read_text())
    card["calibration"] = {"threshold": 0.9}
    path.write_text(json.dumps(card))
    record(tmp_path, "aaaa")
    assert calibrated_threshold(tmp_path, backbone="finetuned", weights_hash="aaaa") == 0.9
    record(tmp_path, "bbbb")
    assert "calibration" not in read_card(tmp_path, "finetuned")
    assert calibrated_threshold(tmp_path, backbone="finetuned", weights_hash="bbbb") is None
