"""Verification and identification figures: ROC, TAR@FAR, rank-k, MAP@R and FNIR@FPIR.

Scores are similarities (higher means more alike) and a comparison is a match
when its score is at or above the threshold, as everywhere in Lineup.

Identification ranks *subjects*, not photos: a subject's score for a probe is
its best-matching gallery photo, which is how the gallery service answers.

Open-set identification follows ISO/IEC 19795-1 and NIST FRVT 1:N:

- a *mated* search is a probe whose subject is in the gallery; a *non-mated*
  search is one whose subject is not. Here every probe gives both: searched
  against the whole gallery it is mated, and searched against the gallery
  with its own subject left out it is non-mated.
- FPIR(t): the fraction of non-mated searches whose top candidate scores ≥ t.
- FNIR(t): the fraction of mated searches in which the true subject is *not*
  returned at rank ≤ R with a score ≥ t. Lineup reports R = 1 (the top
  candidate is the one a reviewer sees first and the one a "match" decision
  is made on); `mated_scores` takes other R for investigative use.
- FNIR at FPIR = x: t is the lowest threshold with FPIR(t) ≤ x, so the
  false-alarm budget is never exceeded.
"""

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from app.training.calibration import threshold_at_fmr

Scores = NDArray[np.float64]


@dataclass(frozen=True)
class RocCurve:
    """False- and true-accept rates at each threshold (descending) and the area under them."""

    false_accept_rates: Scores
    true_accept_rates: Scores
    thresholds: Scores
    auc: float


def roc_curve(genuine: ArrayLike, impostor: ArrayLike) -> RocCurve:
    """The verification ROC of genuine (same person) and impostor similarity scores."""
    genuine, impostor = _scores(genuine), _scores(impostor)
    same = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    scores = np.concatenate([genuine, impostor])
    far, tar, thresholds = sklearn_roc_curve(same, scores, drop_intermediate=False)
    return RocCurve(far, tar, thresholds, auc=float(roc_auc_score(same, scores)))


def tar_at_far(genuine: ArrayLike, impostor: ArrayLike, *, far: float) -> float:
    """Fraction of genuine scores ≥ t, t being the lowest threshold with FAR(t) ≤ `far`."""
    threshold = threshold_at_fmr(_scores(impostor), far)
    return float(np.mean(_scores(genuine) >= threshold))


def subject_scores(
    similarity: ArrayLike, gallery_labels: ArrayLike
) -> tuple[Scores, NDArray[np.int64]]:
    """Probe × subject scores (each subject's best gallery photo) and the subjects, sorted."""
    similarity = np.asarray(similarity, dtype=np.float64)
    gallery_labels = np.asarray(gallery_labels, dtype=np.int64)
    subjects = np.unique(gallery_labels)
    columns = [similarity[:, gallery_labels == subject].max(axis=1) for subject in subjects]
    return np.stack(columns, axis=1), subjects


def true_subject_ranks(
    similarity: ArrayLike, probe_labels: ArrayLike, gallery_labels: ArrayLike
) -> NDArray[np.int64]:
    """Each probe's true subject's rank among gallery subjects (1 = top).

    Ties count against the probe: rank is 1 + the number of *other* subjects
    scoring at least as high, so a tie never flatters the result.
    """
    scores, subjects = subject_scores(similarity, gallery_labels)
    true_columns = _true_columns(probe_labels, subjects)
    rows = np.arange(len(scores))
    true_scores = scores[rows, true_columns]
    # Subjects scoring at least the true one's score, itself included: a 1-based rank.
    ranks: NDArray[np.int64] = (scores >= true_scores[:, None]).sum(axis=1)
    return ranks


def rank_k_accuracy(
    similarity: ArrayLike, probe_labels: ArrayLike, gallery_labels: ArrayLike, *, k: int
) -> float:
    """Fraction of probes whose true subject is among the top `k` gallery subjects."""
    return float(np.mean(true_subject_ranks(similarity, probe_labels, gallery_labels) <= k))


@dataclass(frozen=True)
class OpenSetSearches:
    """Per probe: the mated search's score (−inf when a miss at any threshold) and
    the non-mated search's top score."""

    mated: Scores
    nonmated: Scores


def open_set_searches(
    similarity: ArrayLike, probe_labels: ArrayLike, gallery_labels: ArrayLike, *, rank: int = 1
) -> OpenSetSearches:
    """Mated and non-mated search scores of each probe against a gallery.

    The mated score is the true subject's score if it is returned at rank ≤
    `rank`, else −inf; the non-mated score is the best score among the other
    subjects (the gallery with the probe's own subject left out).
    """
    scores, subjects = subject_scores(similarity, gallery_labels)
    true_columns = _true_columns(probe_labels, subjects)
    rows = np.arange(len(scores))
    ranks = true_subject_ranks(similarity, probe_labels, gallery_labels)
    mated = np.where(ranks <= rank, scores[rows, true_columns], -np.inf)
    others = scores.copy()
    others[rows, true_columns] = -np.inf
    return OpenSetSearches(mated=mated, nonmated=others.max(axis=1))


@dataclass(frozen=True)
class OpenSetPoint:
    """One operating point of open-set identification."""

    threshold: float
    fnir: float
    fpir: float


def fnir_at_fpir(mated: ArrayLike, nonmated: ArrayLike, *, fpir: float) -> OpenSetPoint:
    """FNIR at the lowest threshold whose FPIR is ≤ `fpir`, with the FPIR actually reached.

    `mated`: per mated search, the true subject's score when it is returned at
    the chosen rank, else −inf. `nonmated`: per non-mated search, its top score.
    """
    mated, nonmated = _scores(mated), _scores(nonmated)
    threshold = threshold_at_fmr(nonmated, fpir)
    return OpenSetPoint(
        threshold=threshold,
        fnir=float(np.mean(mated < threshold)),
        fpir=float(np.mean(nonmated >= threshold)),
    )


def map_at_r(
    probe_embeddings: ArrayLike,
    probe_labels: ArrayLike,
    gallery_embeddings: ArrayLike,
    gallery_labels: ArrayLike,
) -> float:
    """Mean average precision at R (Musgrave et al. 2020) of probes against gallery photos.

    R is the number of gallery photos of the probe's subject; neighbours are
    ranked by cosine similarity. Computed by pytorch-metric-learning's
    `AccuracyCalculator` on the CPU.
    """
    calculator = AccuracyCalculator(
        include=("mean_average_precision_at_r",),
        k="max_bin_count",
        device=torch.device("cpu"),
        knn_func=CustomKNN(CosineSimilarity()),
    )
    tensors = [
        torch.as_tensor(np.asarray(x, dtype=np.float32))
        for x in (probe_embeddings, probe_labels, gallery_embeddings, gallery_labels)
    ]
    result = calculator.get_accuracy(*tensors, ref_includes_query=False)
    return float(result["mean_average_precision_at_r"])


def _scores(values: ArrayLike) -> Scores:
    return np.asarray(values, dtype=np.float64).ravel()


def _true_columns(probe_labels: ArrayLike, subjects: NDArray[np.int64]) -> NDArray[np.int64]:
    labels = np.asarray(probe_labels, dtype=np.int64)
    missing = np.setdiff1d(labels, subjects)
    if len(missing):
        raise ValueError(f"probe subjects missing from the gallery: {missing.tolist()}")
    return np.searchsorted(subjects, labels).astype(np.int64)
