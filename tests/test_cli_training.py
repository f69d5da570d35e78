"""`lineup train` and `lineup evaluate` on lfw_mini: a tiny run that leaves a usable model
folder, then a measurement of it against dlib-resnet with an HTML report."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import Result

from app.vision.backbones.registry import create_backbone

from lineup_cli import invoke

REPO_CARD = Path(__file__).resolve().parents[1] / "models" / "dlib-resnet" / "card.json"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data dir and a models dir holding a copy of dlib-resnet's card (its threshold)."""
    models = tmp_path_factory.mktemp("models")
    (models / "dlib-resnet").mkdir()
    shutil.copy(REPO_CARD, models / "dlib-resnet" / "card.json")
    return tmp_path_factory.mktemp("data"), models


@pytest.fixture(scope="module")
def trained(dirs: tuple[Path, Path], faces_dir: Path) -> Result:
    data_dir, models_dir = dirs
    args = ["train", str(faces_dir / "lfw_mini"), "--name", "tiny", "--epochs", "2"]
    args += ["--classes-per-batch", "4", "--m-per-class", "2", "--batches-per-epoch", "3"]
    args += ["--calibration-identities", "3"]
    return invoke(args, data_dir=data_dir, models_dir=models_dir)


@pytest.fixture(scope="module")
def evaluated(trained: Result, dirs: tuple[Path, Path], faces_dir: Path) -> Result:
    data_dir, models_dir = dirs
    args = ["evaluate", str(faces_dir / "lfw_mini"), "--model", "dlib-resnet", "--model", "tiny"]
    args += ["--report", str(data_dir / "reports" / "lfw")]
    args += ["--pairs", str(faces_dir / "lfw_mini" / "pairs.txt")]
    return invoke(args, data_dir=data_dir, models_dir=models_dir)


def test_train_leaves_a_model_folder_that_loads_as_a_backbone(
    trained: Result, dirs: tuple[Path, Path]
) -> None:
    assert trained.exit_code == 0, trained.output
    assert "trained 2 epochs" in trained.output
    models_dir = dirs[1]
    backbone = create_backbone("tiny", device=torch.device("cpu"), models_dir=models_dir)
    card = json.loads((models_dir / "tiny" / "card.json").read_text())
    assert card["weights_hash"] == backbone.version
    assert card["training"]["loss"] == "triplet"
    assert card["training"]["miner"] == "semihard"
    assert len(card["training"]["epoch_losses"]) == 2
    data = card["training"]["data"]
    assert data["identities"] == 9  # 12 less the 3 held out
    assert len(data["held_out_for_calibration"]) == 3
    assert data["description"] == "lfw_mini, every identity"


def test_train_refuses_settings_that_cannot_go_together_before_any_work(
    dirs: tuple[Path, Path], faces_dir: Path
) -> None:
    data_dir, models_dir = dirs
    args = ["train", str(faces_dir / "lfw_mini"), "--name", "never", "--loss", "contrastive"]
    args += ["--pos-margin", "0.6", "--neg-margin", "0.4"]
    result = invoke(args, data_dir=data_dir, models_dir=models_dir)
    assert result.exit_code == 2
    assert "need 0 <= pos_margin < neg_margin <= 2" in result.output
    assert "pos_margin=0.6, neg_margin=0.4" in result.output
    assert not (models_dir / "never").exists()


def test_train_calibrates_the_threshold_on_held_out_identities(dirs: tuple[Path, Path]) -> None:
    card = json.loads((dirs[1] / "tiny" / "card.json").read_text())
    calibration = card["calibration"]
    assert calibration["identities"] == 3
    assert calibration["photos"] == 15
    assert -1.0 <= calibration["threshold"] <= 1.0
    assert calibration["target_false_match_rate"] == 1e-3


def test_evaluate_prints_both_models_and_records_before_and_after(
    evaluated: Result, dirs: tuple[Path, Path]
) -> None:
    assert evaluated.exit_code == 0, evaluated.output
    for row in ("dlib-resnet (clean)", "dlib-resnet (degraded)", "tiny (clean)", "tiny (degraded)"):
        assert row in evaluated.output
    card = json.loads((dirs[1] / "tiny" / "card.json").read_text())
    assert card["metrics"]["clean"]["probes"] == 24
    assert card["metrics"]["before"]["model"] == "dlib-resnet"
    baseline = json.loads((dirs[1] / "dlib-resnet" / "card.json").read_text())["metrics"]
    assert card["metrics"]["before"]["clean"] == baseline["clean"]


def test_the_report_page_shows_its_pictures_and_limitations(
    evaluated: Result, dirs: tuple[Path, Path]
) -> None:
    report = dirs[0] / "reports" / "lfw"
    page = (report / "index.html").read_text()
    for section in ("ROC curves", "Genuine and impostor similarities", "Where it fails"):
        assert section in page
    pictures = ["roc.png", "dlib-resnet-scores.png", "tiny-map.png", "tiny-degraded-top5.png"]
    for name in pictures:
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{name}"' in page
    assert "Demographic gaps" in page and "Threshold choice" in page


def test_evaluate_scores_a_pairs_file_with_its_k_fold_protocol(evaluated: Result) -> None:
    rows = [line for line in evaluated.output.splitlines() if "over 2 folds" in line]
    assert len(rows) == 2  # dlib-resnet and tiny
    dlib = next(row for row in rows if "dlib-resnet" in row)
    accuracy = float(dlib.split("%")[0].split()[-1])
    assert accuracy >= 95.0, dlib
