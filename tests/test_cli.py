"""`lineup` on real photos: enroll a folder tree (interrupted, resumed, re-run), probe, db.

Every invocation that opens the gallery loads the model, so the enroll story runs
once per module and the tests below read its results.
"""

import json
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from app.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, LEADS_NOT_IDENTIFICATION
from app.gallery.service import Gallery
from app.vision.embedder import FaceEmbedder

from lineup_cli import REPO_MODELS, invoke

# Benjamin_Netanyahu_0001 shows a second, usable face: refused under --face single.
PEOPLE = ("Abdullah_Gul", "Benjamin_Netanyahu", "Emma_Watson")
INTERRUPT_AT_CALL = 5  # Abdullah 1–3, Benjamin 1 (refused) are done; Ctrl-C on the next


def summary_count(output: str, label: str) -> int:
    """A number from the summary table, e.g. `enrolled   8`; 0 when the row is absent."""
    found = re.search(rf"^\s*{re.escape(label)}\s+(\d+)\s*$", output, flags=re.MULTILINE)
    return int(found.group(1)) if found else 0


@pytest.fixture(scope="module")
def photo_tree(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Path:
    """Three people × photos 1–3, plus a broken "photo" and a note that is not a photo."""
    tree = tmp_path_factory.mktemp("tree")
    for person in PEOPLE:
        folder = tree / person
        folder.mkdir()
        for number in (1, 2, 3):
            name = f"{person}_{number:04d}.jpg"
            (folder / name).symlink_to(faces_dir / "lfw_mini" / person / name)
    (tree / "Emma_Watson" / "broken.jpg").write_bytes(b"this is not a JPEG")
    (tree / "Emma_Watson" / "notes.txt").write_text("ignored: not a photo")
    return tree


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gallery")


def counting(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[int]:
    """Count calls of `cls.name` while still running it; returns the live counter."""
    calls = [0]
    original: Callable[..., Any] = getattr(cls, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(cls, name, wrapper)
    return calls


@dataclass(frozen=True)
class EnrollRuns:
    interrupted: Result
    saved_index_count: int
    resumed: Result
    rerun: Result
    rerun_detections: int


@pytest.fixture(scope="module")
def runs(photo_tree: Path, data_dir: Path) -> Iterator[EnrollRuns]:
    """Ctrl-C during the first run, then a run to the end, then the same command again."""
    original_enroll = Gallery.enroll
    calls = [0]

    def enroll_until_ctrl_c(self: Gallery, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == INTERRUPT_AT_CALL:
            raise KeyboardInterrupt
        return original_enroll(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Gallery, "enroll", enroll_until_ctrl_c)
        interrupted = invoke(["enroll", str(photo_tree)], data_dir=data_dir)
    (sidecar,) = (data_dir / "index").glob("*.json")
    saved = json.loads(sidecar.read_text())["count"]
    resumed = invoke(["enroll", str(photo_tree)], data_dir=data_dir)
    with pytest.MonkeyPatch.context() as patch:
        detections = counting(patch, FaceEmbedder, "detect")
        rerun = invoke(["enroll", str(photo_tree)], data_dir=data_dir)
    yield EnrollRuns(interrupted, saved, resumed, rerun, detections[0])


def test_ctrl_c_saves_the_index_and_exits_130(runs: EnrollRuns) -> None:
    result = runs.interrupted
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert "interrupted" in result.output
    assert summary_count(result.output, "enrolled") == 3
    assert summary_count(result.output, "refused: multiple_faces") == 1
    assert runs.saved_index_count == 3  # the faces enrolled before Ctrl-C are in the saved index


def test_resumed_run_enrolls_the_rest_and_counts_the_done_as_duplicates(runs: EnrollRuns) -> None:
    result = runs.resumed
    assert result.exit_code == 0, result.output
    assert summary_count(result.output, "enrolled") == 5
    assert summary_count(result.output, "duplicate") == 3
    assert summary_count(result.output, "refused: multiple_faces") == 1
    assert summary_count(result.output, "refused: unreadable") == 1
    assert summary_count(result.output, "subjects created") == 1  # Emma_Watson; 2 already exist
    assert "Benjamin_Netanyahu/Benjamin_Netanyahu_0001.jpg" in result.output
    assert "photos/s" in result.output


def test_rerun_enrolls_nothing_new_and_runs_the_model_only_on_refused_photos(
    runs: EnrollRuns,
) -> None:
    result = runs.rerun
    assert result.exit_code == 0, result.output
    assert summary_count(result.output, "enrolled") == 0
    assert summary_count(result.output, "duplicate") == 8
    assert summary_count(result.output, "subjects created") == 0
    # Refused photos were never stored, so only the two-face photo is looked at again
    # (the broken file fails before detection); duplicates are caught by their hash.
    assert runs.rerun_detections == 1


def test_probe_ranks_the_right_person_first(
    runs: EnrollRuns, data_dir: Path, faces_dir: Path
) -> None:
    photo = faces_dir / "lfw_mini" / "Abdullah_Gul" / "Abdullah_Gul_0004.jpg"
    result = invoke(["probe", str(photo), "--case", "T-1"], data_dir=data_dir)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "face 1" in out and "face 2" not in out
    first = min(out.index(name.replace("_", " ")) for name in PEOPLE)
    assert out.index("Abdullah Gul") == first, out
    assert "MATCH" in out or "no match" in out
    assert LEADS_NOT_IDENTIFICATION in " ".join(out.split())


def test_probe_json_is_a_probe_result(runs: EnrollRuns, data_dir: Path, faces_dir: Path) -> None:
    photo = faces_dir / "lfw_mini" / "Emma_Watson" / "Emma_Watson_0004.jpg"
    result = invoke(["probe", str(photo), "--json", "--k", "2", "--case", "T-1"], data_dir=data_dir)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["k"] == 2
    (face,) = body["faces"]
    assert [c["rank"] for c in face["candidates"]] == [1, 2]
    assert face["candidates"][0]["subject"]["external_id"] == "Emma_Watson"
    assert face["decision"] in ("match", "no_match")


def test_probe_of_a_non_image_is_one_line_on_stderr_and_exit_2(
    runs: EnrollRuns, data_dir: Path, tmp_path: Path
) -> None:
    not_a_photo = tmp_path / "minutes.jpg"
    not_a_photo.write_text("minutes of the meeting")
    result = invoke(["probe", str(not_a_photo), "--case", "T-1"], data_dir=data_dir)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "Traceback" not in result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "minutes.jpg" in line and "unreadable_image" in line
    assert result.stdout == ""


def test_a_probe_without_a_case_is_refused_before_anything_loads(
    runs: EnrollRuns, data_dir: Path, faces_dir: Path
) -> None:
    photo = faces_dir / "lfw_mini" / "Monica_Seles" / "Monica_Seles_0004.jpg"
    before = audit_count(data_dir)
    result = invoke(["probe", str(photo)], data_dir=data_dir)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "--case is required" in result.stderr and result.stdout == ""
    assert audit_count(data_dir) == before


def test_a_probe_is_recorded_against_its_case_as_the_local_account(
    runs: EnrollRuns, data_dir: Path, faces_dir: Path
) -> None:
    photo = faces_dir / "lfw_mini" / "Monica_Seles" / "Monica_Seles_0004.jpg"
    args = ["probe", str(photo), "--case", "CLI-7", "--purpose", "a test"]
    assert invoke(args, data_dir=data_dir).exit_code == 0
    with sqlite3.connect(data_dir / "lineup.db") as db:
        row = db.execute(
            "SELECT key_name, role, case_reference, purpose, action FROM audit_events "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row[0].startswith("local:") and row[1:] == ("admin", "CLI-7", "a test", "probe")


def audit_count(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "lineup.db") as db:
        count: int = db.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    return count


def test_db_upgrade_on_a_fresh_directory(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    result = invoke(["db", "upgrade"], data_dir=fresh)
    assert result.exit_code == 0, result.output
    assert "database at revision" in result.stdout
    assert (fresh / "lineup.db").is_file()


# `lineup models list` and `lineup reindex`, on a fine-tuned model made here from
# dlib's weights and a small head, with a card as training and calibration write it.
TUNED = "tuned-head"


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """The repository's dlib card, and a fine-tuned model whose card calibrated it at 0.5."""
    from app.training.checkpoints import save_weights
    from app.vision.backbones.dlib_backbone import default_weights_path
    from app.vision.backbones.dlib_resnet import DlibFaceResNet
    from app.vision.backbones.embedding_network import EmbeddingNetwork
    from app.vision.backbones.weights import weights_version

    models = tmp_path / "models"
    shutil.copytree(REPO_MODELS / "dlib-resnet", models / "dlib-resnet")
    shutil.copytree(REPO_MODELS / "edgeface-xs", models / "edgeface-xs")
    (models / TUNED).mkdir()
    dlib = DlibFaceResNet.from_dlib_file(default_weights_path())
    weights = save_weights(models / TUNED, EmbeddingNetwork(dlib, head_dim=32, seed=1))
    card = {
        "weights_hash": weights_version(weights),
        "calibration": {"threshold": 0.5},
        "training": {"base": {"backbone": "dlib-resnet"}, "loss": "triplet", "epochs_completed": 3},
    }
    (models / TUNED / "card.json").write_text(json.dumps(card))
    return models


def table_row(output: str, name: str) -> list[str]:
    """The cells of the `models list` row of `name`."""
    rows = [line.split("│") for line in output.splitlines() if "│" in line]
    (row,) = [row for row in rows if row[0].strip() == name]
    return [cell.strip() for cell in row]


def test_models_list_shows_built_ins_and_fine_tuned_models_without_a_database(
    models_dir: Path, tmp_path: Path
) -> None:
    result = invoke(["models", "list"], data_dir=tmp_path / "none", models_dir=models_dir)
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "dlib-resnet") == [
        "dlib-resnet", "55533b28a95800a5", "128", "0.928", "built in", ""
    ]  # fmt: skip
    tuned = table_row(result.stdout, TUNED)
    assert tuned[2:] == ["32", "0.500", "dlib-resnet + triplet, 3 epochs", ""]
    assert table_row(result.stdout, "edgeface-xs") == [
        "edgeface-xs", "74f5df4523ddead0", "512", "0.273", "built in", ""
    ]  # fmt: skip
    assert table_row(result.stdout, "edgeface-xxs")[1:3] == ["—", "512"]
    assert "edgeface-xxs: edgeface-xxs's weights are not at" in result.stdout
    assert table_row(result.stdout, "facenet-casia")[1:3] == ["—", "512"]
    assert "facenet-casia: weights not configured" in result.stdout
    assert not (tmp_path / "none").exists()  # listing creates no database


def test_models_list_names_an_unreadable_card_instead_of_failing(
    models_dir: Path, tmp_path: Path
) -> None:
    (models_dir / TUNED / "card.json").write_text('{"weights_hash": ')  # cut short
    result = invoke(["models", "list"], data_dir=tmp_path / "none", models_dir=models_dir)
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, TUNED)[2:4] == ["32", "—"]
    assert f"{TUNED}: model card" in result.stdout and "cannot be read" in result.stdout


def test_reindex_moves_the_gallery_to_a_fine_tuned_model_and_recovers_a_lost_one(
    runs: EnrollRuns, data_dir: Path, models_dir: Path, tmp_path: Path, faces_dir: Path
) -> None:
    gallery = tmp_path / "gallery"
    shutil.copytree(data_dir, gallery)
    photo = str(faces_dir / "lfw_mini" / "Emma_Watson" / "Emma_Watson_0004.jpg")

    def lineup(*args: str) -> Result:
        return invoke(list(args), data_dir=gallery, models_dir=models_dir)

    unknown = lineup("reindex", "no-such-model")
    assert unknown.exit_code == EXIT_BAD_INPUT and "built in: dlib-resnet" in unknown.output
    moved = lineup("reindex", TUNED)
    assert moved.exit_code == 0, moved.output
    assert f"now on {TUNED}@" in moved.stdout and "8 faces, 0 re-aligned" in moved.stdout
    assert table_row(lineup("models", "list").stdout, TUNED)[-1] == "active"
    probed = lineup("probe", photo, "--json", "--case", "T-1")
    assert json.loads(probed.stdout)["model_version"]["backbone"] == TUNED
    assert "nothing to re-embed" in lineup("reindex", TUNED).stdout

    shutil.rmtree(models_dir / TUNED)
    refused = lineup("probe", photo, "--case", "T-1")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "lineup reindex MODEL" in refused.stderr
    listed = lineup("models", "list").stdout
    assert table_row(listed, TUNED)[4] == "missing" and "model is gone" in listed
    recovered = lineup("reindex", "dlib-resnet")
    assert recovered.exit_code == 0, recovered.output
    assert "dlib-resnet@55533b28a95800a5 is the active model version" in recovered.stdout
    body = json.loads(lineup("probe", photo, "--json", "--case", "T-1").stdout)
    assert body["model_version"]["backbone"] == "dlib-resnet"
    assert body["faces"][0]["candidates"][0]["subject"]["external_id"] == "Emma_Watson"


def test_probe_on_a_fresh_directory_says_the_gallery_is_empty(
    tmp_path: Path, faces_dir: Path
) -> None:
    photo = faces_dir / "lfw_mini" / "Emma_Watson" / "Emma_Watson_0004.jpg"
    result = invoke(["probe", str(photo), "--case", "T-1"], data_dir=tmp_path / "fresh")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "no match" in result.stdout and "the gallery is empty" in result.stdout


def test_enroll_refuses_a_tree_whose_folder_names_cannot_be_subjects(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for name in ("Emma_Watson", "tab\there", " spaced"):
        (tree / name).mkdir(parents=True)
    result = invoke(["enroll", str(tree)], data_dir=tmp_path / "data")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "Traceback" not in result.output
    assert "'tab\\there'" in result.stderr and "' spaced'" in result.stderr
    assert "Emma_Watson" not in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was opened
