"""`lineup train` and `lineup evaluate` on lfw_mini: a tiny run that leaves a usable model
folder, then a measurement of it against dlib-resnet with an HTML report; and the pairs
mode on its own, against the repository's models, whose cards it must leave alone."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import Result
from PIL import Image

from app.vision.backbones.registry import create_backbone

from lineup_cli import REPO_MODELS, invoke

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
    args += ["--pairs", str(faces_dir / "lfw_mini" / "pairs.txt"), "--write-card"]
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
    accuracy = float(dlib.split("±")[0].split()[-1])
    assert accuracy >= 95.0, dlib


# The pairs mode, against the repository's own models and cards. Every run shares one data
# dir, so lfw_mini's faces are found once; the folders built below link to lfw_mini's photos.
PAIRS_MODELS = ["--model", "dlib-resnet", "--model", "dlib-resnet-cctv"]


def committed_cards() -> dict[str, bytes]:
    return {path.parent.name: path.read_bytes() for path in REPO_MODELS.glob("*/card.json")}


@pytest.fixture(scope="module")
def pairs_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pairs-data")


@pytest.fixture(scope="module")
def pairs_only(
    pairs_data_dir: Path, faces_dir: Path
) -> tuple[Result, dict[str, bytes], dict[str, bytes]]:
    """`lineup evaluate --pairs lfw_mini/pairs.txt --json`, no TREE; the cards before and after."""
    before = committed_cards()
    args = ["evaluate", "--pairs", str(faces_dir / "lfw_mini" / "pairs.txt"), *PAIRS_MODELS]
    args += ["--json", str(pairs_data_dir / "figures" / "lfw.json")]
    result = invoke(args, data_dir=pairs_data_dir)
    return result, before, committed_cards()


def test_a_pairs_only_run_needs_no_tree_and_writes_no_card(
    pairs_only: tuple[Result, dict[str, bytes], dict[str, bytes]],
) -> None:
    result, before, after = pairs_only
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "over 2 folds" in line]
    assert [row.split()[1] for row in rows] == ["dlib-resnet", "dlib-resnet-cctv"]
    assert "every pair scored: all 54 photos had a face" in result.output
    assert "TAR@FAR 1e-3 on 30 different-person pairs allows no false accept" in result.output
    assert before and after == before


def test_the_pairs_json_holds_each_fold_the_spread_tar_and_the_calibrated_accuracy(
    pairs_only: tuple[Result, dict[str, bytes], dict[str, bytes]], pairs_data_dir: Path
) -> None:
    assert pairs_only[0].exit_code == 0, pairs_only[0].output
    figures = json.loads((pairs_data_dir / "figures" / "lfw.json").read_text())
    assert set(figures) == {"pairs"}  # no TREE, no tree figures
    assert figures["pairs"]["photos"] == 54
    assert "different-person answer at every threshold" in figures["pairs"]["unscored_rule"]
    dlib = figures["pairs"]["models"]["dlib-resnet"]
    assert (dlib["pairs"], dlib["genuine_pairs"], dlib["impostor_pairs"]) == (60, 30, 30)
    assert dlib["unscored"] == 0
    folds = dlib["folds"]
    assert [fold["fold"] for fold in folds] == [0, 1]
    assert all(0.5 < fold["threshold"] < 1.0 for fold in folds)
    accuracies = [fold["accuracy"] for fold in folds]
    assert dlib["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert dlib["accuracy_std"] == pytest.approx(np.std(accuracies))
    assert dlib["accuracy_mean"] >= 0.95
    assert 0.0 <= dlib["tar_at_far_1e-3"] <= 1.0
    card = json.loads((REPO_MODELS / "dlib-resnet" / "card.json").read_text())
    assert dlib["calibrated_threshold"] == card["calibration"]["threshold"]
    assert dlib["accuracy_at_calibrated_threshold"] >= 0.9


def test_a_tree_run_writes_no_card_unless_asked(
    pairs_only: tuple[Result, dict[str, bytes], dict[str, bytes]],
    pairs_data_dir: Path,
    faces_dir: Path,
) -> None:
    before = committed_cards()
    args = ["evaluate", str(faces_dir / "lfw_mini"), "--model", "dlib-resnet"]
    result = invoke(args, data_dir=pairs_data_dir)  # lfw_mini's faces: found by the pairs run
    assert result.exit_code == 0, result.output
    assert "dlib-resnet (clean)" in result.output
    assert "model cards left as they are" in result.output
    assert committed_cards() == before


def benchmark_layout(root: Path, faces_dir: Path) -> Path:
    """A public benchmark's layout: `pairs.txt` beside a folder of images, `lfw/`."""
    root.mkdir()
    shutil.copy(faces_dir / "lfw_mini" / "pairs.txt", root / "pairs.txt")
    (root / "lfw").symlink_to(faces_dir / "lfw_mini", target_is_directory=True)
    return root / "pairs.txt"


def test_photos_beside_the_pairs_file_missing_is_refused_naming_the_folder(
    pairs_data_dir: Path, faces_dir: Path, tmp_path: Path
) -> None:
    pairs = benchmark_layout(tmp_path / "benchmark", faces_dir)
    result = invoke(["evaluate", "--pairs", str(pairs)], data_dir=pairs_data_dir)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.replace("│", " ").split())
    assert f"54 of the 54 photos named in the pairs file are missing from {pairs.parent}" in message
    assert "--images should be the folder" in message


def test_images_can_lie_elsewhere_than_the_pairs_file(
    pairs_only: tuple[Result, dict[str, bytes], dict[str, bytes]],
    pairs_data_dir: Path,
    faces_dir: Path,
    tmp_path: Path,
) -> None:
    pairs = benchmark_layout(tmp_path / "benchmark", faces_dir)
    args = ["evaluate", "--pairs", str(pairs), "--images", str(pairs.parent / "lfw")]
    result = invoke([*args, *PAIRS_MODELS], data_dir=pairs_data_dir)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "over 2 folds" in line]
    expected = [line for line in pairs_only[0].output.splitlines() if "over 2 folds" in line]
    assert rows == expected


def test_one_photo_missing_is_refused_with_the_count(
    pairs_data_dir: Path, faces_dir: Path, tmp_path: Path
) -> None:
    images = tmp_path / "lfw"
    for person in (faces_dir / "lfw_mini").iterdir():
        if person.is_dir():
            (images / person.name).mkdir(parents=True)
            for photo in person.iterdir():
                (images / person.name / photo.name).symlink_to(photo)
    (images / "Tom_Hanks" / "Tom_Hanks_0004.jpg").unlink()
    args = ["evaluate", "--pairs", str(faces_dir / "lfw_mini" / "pairs.txt")]
    result = invoke([*args, "--images", str(images)], data_dir=pairs_data_dir)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.replace("│", " ").split())
    assert f"1 of the 54 photos named in the pairs file are missing from {images}" in message


def test_pairs_without_a_usable_face_are_counted_and_said_how(
    pairs_data_dir: Path, faces_dir: Path, tmp_path: Path
) -> None:
    """Tom Hanks's first photo is replaced by its top-left corner: real, but no face."""
    lfw = faces_dir / "lfw_mini"
    for person in ("Emma_Watson", "Heidi_Klum", "Monica_Seles"):
        (tmp_path / person).symlink_to(lfw / person, target_is_directory=True)
    (tmp_path / "Tom_Hanks").mkdir()
    for number in (2, 3):
        name = f"Tom_Hanks_000{number}.jpg"
        (tmp_path / "Tom_Hanks" / name).symlink_to(lfw / "Tom_Hanks" / name)
    with Image.open(lfw / "Tom_Hanks" / "Tom_Hanks_0001.jpg") as photo:
        photo.crop((0, 0, 90, 90)).save(tmp_path / "Tom_Hanks" / "Tom_Hanks_0001.jpg")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "2\t2\n"
        "Tom_Hanks\t1\t2\nEmma_Watson\t1\t2\n"
        "Tom_Hanks\t1\tEmma_Watson\t3\nHeidi_Klum\t1\tMonica_Seles\t1\n"
        "Heidi_Klum\t2\t3\nMonica_Seles\t2\t3\n"
        "Tom_Hanks\t3\tHeidi_Klum\t4\nEmma_Watson\t4\tMonica_Seles\t4\n"
    )
    args = ["evaluate", "--pairs", str(pairs), "--model", "dlib-resnet"]
    result = invoke([*args, "--json", str(tmp_path / "figures.json")], data_dir=pairs_data_dir)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "2 of 8 pairs unscored (1 no_face of 15 photos)" in output
    assert "counted as different-person answers at every threshold" in output
    row = next(line for line in result.output.splitlines() if "over 2 folds" in line)
    assert row.split("│")[3].strip() == "2"
    figures = json.loads((tmp_path / "figures.json").read_text())["pairs"]
    assert figures["photos_without_usable_face"] == {"no_face": 1}
    assert figures["models"]["dlib-resnet"]["unscored"] == 2


def test_evaluate_with_neither_a_tree_nor_pairs_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(["evaluate"], data_dir=tmp_path)
    assert result.exit_code == 2
    assert "nothing to measure: give a TREE, --pairs FILE, or both" in result.output


def test_tree_options_without_a_tree_are_refused(tmp_path: Path, faces_dir: Path) -> None:
    args = ["evaluate", "--pairs", str(faces_dir / "lfw_mini" / "pairs.txt")]
    result = invoke([*args, "--report", str(tmp_path / "r"), "--write-card"], data_dir=tmp_path)
    assert result.exit_code == 2
    assert "--report, --write-card" in result.output
    assert "give a TREE" in result.output
    assert not (tmp_path / "r").exists()
