"""Where a model fails: rank-1 broken down by what the probe photo looks like.

celeba carries no pose, light or occlusion labels, so the breakdown measures
simple proxies from what the pipeline already knows about each probe:

- *resolution*: the face's width in the original photo (MTCNN's box), px;
- *pose*: a yaw proxy from the five landmarks, the nose tip's horizontal
  offset from the midpoint of the eyes divided by the distance between the
  eyes (0 for a frontal face, about ±0.5 for a half profile);
- *light*: the mean luminance (0–255) of the aligned clean chip.

And the threshold: how often a fixed threshold misses the true subject
(FNIR) and how often it names someone for a person not in the gallery (FPIR).
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.training.evaluation import ConditionScores, EvaluationSet
from app.training.metrics import open_set_searches

LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Bin:
    """One group of probes: what they have in common, how many, and their rank-1."""

    factor: str
    label: str
    probes: int
    rank1: float


def probe_attributes(evaluation: EvaluationSet) -> dict[str, NDArray[np.float64]]:
    """Per probe: face width (px), |yaw proxy| and chip luminance."""
    records = [evaluation.chips.records[int(i)] for i in evaluation.split.probes]
    widths = np.array([record.box_width for record in records])
    landmarks = np.array([record.landmarks for record in records])  # N×5×2
    eyes_mid = landmarks[:, :2].mean(axis=1)
    eye_distance = np.linalg.norm(landmarks[:, 1] - landmarks[:, 0], axis=1)
    yaw = np.abs(landmarks[:, 2, 0] - eyes_mid[:, 0]) / np.maximum(eye_distance, 1e-6)
    luminance = (evaluation.probe_chips.astype(np.float64) @ LUMA).mean(axis=(1, 2))
    return {"resolution": widths, "pose": yaw, "light": luminance}


# (factor, unit-free edges, labels): bins are [edge_i, edge_i+1).
BINS: tuple[tuple[str, tuple[float, ...], tuple[str, ...]], ...] = (
    ("resolution", (0, 50, 90, np.inf), ("face < 50 px", "50–90 px", "≥ 90 px")),
    ("pose", (0, 0.12, 0.25, np.inf), ("frontal (yaw < 0.12)", "turned", "strongly turned")),
    ("light", (0, 80, 170, 256), ("dark (luma < 80)", "normal", "bright (luma ≥ 170)")),
)


def rank1_breakdown(evaluation: EvaluationSet, scores: ConditionScores) -> list[Bin]:
    """Rank-1 of the probes in each bin of each factor."""
    hits = scores.ranks() == 1
    attributes = probe_attributes(evaluation)
    bins = []
    for factor, edges, labels in BINS:
        group = np.digitize(attributes[factor], edges[1:-1])
        for number, label in enumerate(labels):
            members = group == number
            count = int(members.sum())
            rank1 = float(hits[members].mean()) if count else float("nan")
            bins.append(Bin(factor, label, count, rank1))
    return bins


@dataclass(frozen=True)
class ThresholdOutcome:
    """At one threshold: misses of enrolled people and false alarms for strangers."""

    threshold: float
    fnir: float
    fpir: float


def at_threshold(scores: ConditionScores, threshold: float) -> ThresholdOutcome:
    """FNIR (true subject not top, or below `threshold`) and FPIR (a stranger's top ≥ it)."""
    searches = open_set_searches(scores.similarity, scores.probe_labels, scores.gallery_labels)
    return ThresholdOutcome(
        threshold=threshold,
        fnir=float(np.mean(searches.mated < threshold)),
        fpir=float(np.mean(searches.nonmated >= threshold)),
    )
