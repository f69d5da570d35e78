"""The k-fold verification protocol against hand-computed values."""

from pathlib import Path

import numpy as np
import pytest

from app.training.verification import (
    best_threshold,
    kfold_accuracy,
    read_pairs,
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
