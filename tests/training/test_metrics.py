"""Verification and identification metrics against hand-computed values."""

import math

import numpy as np
import pytest

from app.training.metrics import (
    fnir_at_fpir,
    map_at_r,
    open_set_searches,
    rank_k_accuracy,
    roc_curve,
    subject_scores,
    tar_at_far,
    true_subject_ranks,
)

GENUINE = np.array([0.9, 0.8, 0.7, 0.4])
IMPOSTOR = np.array([0.85, 0.6, 0.5, 0.3, 0.2, 0.1, 0.05, 0.0, -0.1, -0.2])


def test_tar_at_far_sets_the_threshold_on_impostors() -> None:
    # FAR 0.1 of 10 impostors allows 1 false accept: t lies just above 0.6, so only 0.85
    # is accepted among impostors and 0.9, 0.8, 0.7 among genuine pairs.
    assert tar_at_far(GENUINE, IMPOSTOR, far=0.1) == 0.75
    # FAR 0 allows none: t lies just above 0.85; only 0.9 passes.
    assert tar_at_far(GENUINE, IMPOSTOR, far=0.0) == 0.25
    # FAR 0.25 allows floor(2.5) = 2: t just above 0.5.
    assert tar_at_far(GENUINE, IMPOSTOR, far=0.25) == 0.75


def test_roc_area_is_the_fraction_of_correctly_ordered_pairs() -> None:
    # Of the 2 × 2 genuine/impostor pairs only (0.4, 0.5) is in the wrong order.
    curve = roc_curve([0.9, 0.4], [0.5, 0.1])
    assert curve.auc == pytest.approx(0.75)
    assert curve.true_accept_rates[-1] == 1.0 and curve.false_accept_rates[-1] == 1.0
    assert np.all(np.diff(curve.false_accept_rates) >= 0)


# Three probes against five gallery photos of three subjects.
GALLERY_LABELS = np.array([0, 0, 1, 1, 2])
PROBE_LABELS = np.array([0, 1, 2])
SIMILARITY = np.array(
    [
        [0.2, 0.9, 0.5, 0.1, 0.3],  # subjects 0.9, 0.5, 0.3 → true subject 0 at rank 1
        [0.8, 0.1, 0.6, 0.7, 0.75],  # subjects 0.8, 0.7, 0.75 → true subject 1 at rank 3
        [0.3, 0.6, 0.2, 0.4, 0.5],  # subjects 0.6, 0.4, 0.5 → true subject 2 at rank 2
    ]
)


def test_a_subject_scores_with_its_best_gallery_photo() -> None:
    scores, subjects = subject_scores(SIMILARITY, GALLERY_LABELS)
    assert subjects.tolist() == [0, 1, 2]
    assert scores.tolist() == [[0.9, 0.5, 0.3], [0.8, 0.7, 0.75], [0.6, 0.4, 0.5]]


def test_rank_k_counts_probes_whose_subject_is_in_the_top_k() -> None:
    assert true_subject_ranks(SIMILARITY, PROBE_LABELS, GALLERY_LABELS).tolist() == [1, 3, 2]
    accuracies = [rank_k_accuracy(SIMILARITY, PROBE_LABELS, GALLERY_LABELS, k=k) for k in (1, 2, 3)]
    assert accuracies == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_a_tie_does_not_flatter_the_rank() -> None:
    tied = np.array([[0.5, 0.5]])
    assert true_subject_ranks(tied, [0], [0, 1]).tolist() == [2]


def test_a_probe_subject_missing_from_the_gallery_is_an_error() -> None:
    with pytest.raises(ValueError, match="missing from the gallery"):
        rank_k_accuracy(SIMILARITY, [0, 1, 7], GALLERY_LABELS, k=1)


def test_open_set_searches_mated_at_rank_one_and_non_mated_without_the_subject() -> None:
    searches = open_set_searches(SIMILARITY, PROBE_LABELS, GALLERY_LABELS)
    # Only probe 0 finds its subject at rank 1; the others miss at every threshold.
    assert searches.mated.tolist() == [0.9, -math.inf, -math.inf]
    # Non-mated: the best of the other subjects.
    assert searches.nonmated.tolist() == [0.5, 0.8, 0.6]
    wider = open_set_searches(SIMILARITY, PROBE_LABELS, GALLERY_LABELS, rank=3)
    assert wider.mated.tolist() == [0.9, 0.7, 0.5]


def test_fnir_at_fpir() -> None:
    mated = [0.9, 0.7, 0.55, -math.inf]
    nonmated = [0.6, 0.5, 0.4, 0.3]
    # FPIR 25 % of 4 allows one false alarm: t just above 0.5. 0.9, 0.7 and 0.55 are found.
    point = fnir_at_fpir(mated, nonmated, fpir=0.25)
    assert point.threshold == pytest.approx(0.5)
    assert point.threshold > 0.5
    assert (point.fnir, point.fpir) == (0.25, 0.25)
    # FPIR 1 % of 4 allows none: t just above 0.6, so 0.55 is missed too.
    strict = fnir_at_fpir(mated, nonmated, fpir=0.01)
    assert (strict.fnir, strict.fpir) == (0.5, 0.0)


def unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_map_at_r() -> None:
    # Gallery at 0° (subject 0), 30° (1), 60° (0), 90° (1): R = 2 for either subject.
    gallery = np.array([unit(0), unit(30), unit(60), unit(90)])
    gallery_labels = np.array([0, 1, 0, 1])
    # A probe of subject 0 at 20°: nearest are 30° (wrong), then 0° (right) → AP@2 = (0 + 1/2)/2.
    # A probe of subject 1 at 80°: nearest are 90° (right), then 60° (wrong) → AP@2 = (1 + 0)/2.
    probes = np.array([unit(20), unit(80)])
    probe_labels = np.array([0, 1])
    assert map_at_r(probes, probe_labels, gallery, gallery_labels) == pytest.approx(0.375)
