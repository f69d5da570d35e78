"""The k-fold verification protocol against hand-computed values."""

import re
from pathlib import Path

import numpy as np
import pytest

from app.training.verification import (
    ImagePair,
    PairsNotScorable,
    best_threshold,
    check_photos,
    kfold_accuracy,
    read_pairs,
    score_pairs,
    verification_accuracy,
)


def test_accuracy_counts_agreeing_decisions() -> None:
    similarities = np.array([0.9, 0.8, 0.4, 0.7])
    same = np.array([True, False, False, True])
    # At 0.75: decide same, same, diff, diff → right, wrong, right, wrong.
    assert verification_accuracy(similarities, same, threshold=0.75) == 0.5
    assert verification_accuracy(similarities, same, threshold=0.65) == 0.75


def test_best_threshold_separates_separable_scores() -> None:
    similarities = np.array([0.2, 0.3, 0.6, 0.9])
    same = np.array([False, False, True, True])
    threshold = best_threshold(similarities, same)
    assert threshold == pytest.approx(0.45)
    assert verification_accuracy(similarities, same, threshold=threshold) == 1.0


def test_each_fold_is_scored_with_the_other_folds_threshold() -> None:
    # Fold 0 alone would pick 0.45; fold 1 alone would pick 0.75.
    similarities = np.array([0.2, 0.3, 0.6, 0.9, 0.5, 0.7, 0.8, 0.95])
    same = np.array([False, False, True, True, False, False, True, True])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    results = kfold_accuracy(similarities, same, folds)
    assert [r.threshold for r in results] == pytest.approx([0.75, 0.45])
    # Fold 0 at 0.75: 0.6 is missed → 3/4. Fold 1 at 0.45: 0.5 and 0.7 falsely match → 2/4.
    assert [r.accuracy for r in results] == [0.75, 0.5]


def test_pairs_file_in_lfw_format(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_text("1\t1\nAda\t1\t2\nAda\t1\tBob\t3\n")
    first, second = read_pairs(tmp_path / "pairs.txt")
    assert first.same and first.first == tmp_path / "Ada" / "Ada_0001.jpg"
    assert first.second == tmp_path / "Ada" / "Ada_0002.jpg"
    assert not second.same and second.second == tmp_path / "Bob" / "Bob_0003.jpg"
    assert first.fold == second.fold == 0


def test_a_pairs_file_with_missing_lines_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_text("2\t1\nAda\t1\t2\n")
    with pytest.raises(ValueError, match="expected 4 pairs"):
        read_pairs(tmp_path / "pairs.txt")


def test_pairs_resolve_under_a_separate_images_folder(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_text("1\t1\nAda\t1\t2\nAda\t1\tBob\t3\n")
    first, _ = read_pairs(tmp_path / "pairs.txt", images=tmp_path / "lfw")
    assert first.first == tmp_path / "lfw" / "Ada" / "Ada_0001.jpg"


def test_missing_photos_are_refused_with_their_count_and_folder(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_text("1\t1\nAda\t1\t2\nAda\t1\tBob\t3\n")
    (tmp_path / "Ada").mkdir()
    (tmp_path / "Ada" / "Ada_0001.jpg").write_bytes(b"")
    pairs = read_pairs(tmp_path / "pairs.txt")
    with pytest.raises(
        PairsNotScorable, match=rf"2 of the 3 photos .* missing from {re.escape(str(tmp_path))} "
    ):
        check_photos(pairs, images=tmp_path)


def test_an_unscored_pair_is_a_different_person_answer_at_every_threshold() -> None:
    # Scored: genuine 0.9, impostor 0.3; unscored: one genuine, one impostor.
    similarities = np.array([0.9, 0.3, np.nan, np.nan])
    same = np.array([True, False, True, False])
    # Any threshold in (0.3, 0.9] gets 3 of 4 right (the unscored genuine is a miss);
    # the lowest candidate (accept all) would not accept the unscored pairs either: 2 of 4.
    assert best_threshold(similarities, same) == pytest.approx(0.6)
    assert verification_accuracy(similarities, same, threshold=0.6) == 0.75
    assert verification_accuracy(similarities, same, threshold=-5.0) == 0.5


def test_a_threshold_cannot_be_chosen_without_a_scored_pair() -> None:
    with pytest.raises(PairsNotScorable):
        best_threshold(np.array([np.nan, np.nan]), np.array([True, False]))


def unit(degrees: float) -> np.ndarray:
    """A unit vector in the plane at `degrees`: cosines between them are known by hand."""
    radians = np.radians(degrees)
    return np.array([np.cos(radians), np.sin(radians)], dtype=np.float32)


def cos(degrees: float) -> float:
    return float(np.cos(np.radians(degrees)))


def pair(first: str, second: str, *, same: bool, fold: int) -> ImagePair:
    return ImagePair(Path(f"{first}.jpg"), Path(f"{second}.jpg"), same=same, fold=fold)


def test_score_pairs_reports_folds_spread_tar_and_the_calibrated_accuracy() -> None:
    pairs = [
        pair("a", "b", same=True, fold=0),  # cos 0° = 1
        pair("a", "c", same=False, fold=0),  # cos 100° ≈ −0.174
        pair("d", "e", same=True, fold=1),  # cos 50° ≈ 0.643
        pair("d", "f", same=False, fold=1),  # cos 40° ≈ 0.766
        pair("g", "h", same=True, fold=1),  # h has no face: unscored
    ]
    angles = {"a": 0, "b": 0, "c": 100, "d": 0, "e": 50, "f": 40, "g": 0}
    embeddings = {Path(f"{name}.jpg"): unit(angle) for name, angle in angles.items()}

    result = score_pairs(pairs, embeddings, calibrated_threshold=0.7)

    counts = (result.pairs, result.unscored, result.genuine_pairs, result.impostor_pairs)
    assert counts == (5, 1, 3, 2)
    # Fold 0 is judged at the threshold chosen on fold 1 (0.643 same, 0.766 different,
    # unscored same): every candidate gets 1 of 3, so the lowest wins, just under 0.643.
    # There fold 0's 1 is accepted and its −0.174 rejected: 2/2.
    # Fold 1 is judged at fold 0's midpoint (1 − 0.174) / 2 ≈ 0.413: 0.643 accepted (right),
    # 0.766 accepted (wrong), the unscored pair rejected (wrong): 1/3.
    assert [fold.threshold for fold in result.folds] == pytest.approx(
        [cos(50) - 1e-6, (1 + cos(100)) / 2], abs=1e-6
    )
    assert [fold.accuracy for fold in result.folds] == pytest.approx([1, 1 / 3])
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.accuracy_std == pytest.approx(1 / 3)  # population std of 1 and 1/3
    # FAR 1e-3 of 2 impostors allows none: the threshold is just above 0.766, and of the
    # three genuine pairs only the 1 passes.
    assert result.tar_at_far_1e3 == pytest.approx(1 / 3)
    # At 0.7: 1 and −0.174 right; 0.643 rejected, 0.766 accepted, unscored rejected: 2/5.
    assert result.calibrated_accuracy == pytest.approx(2 / 5)
    # AUC, unscored ranked last: of 3 × 2 genuine-impostor comparisons the genuine wins
    # 1 > −0.174, 1 > 0.766, 0.643 > −0.174 → 3/6.
    assert result.auc == pytest.approx(0.5)
    figures = result.to_json()
    assert figures["tar_at_far_1e-3"] == result.tar_at_far_1e3
    assert figures["accuracy_at_calibrated_threshold"] == result.calibrated_accuracy
    assert figures["calibrated_threshold"] == 0.7
    assert [fold["accuracy"] for fold in figures["folds"]] == pytest.approx([1, 1 / 3])


def test_pairs_with_no_face_in_any_pair_are_refused() -> None:
    with pytest.raises(PairsNotScorable, match="no pair has a face"):
        score_pairs([pair("a", "b", same=True, fold=0)], {Path("a.jpg"): unit(0)})
