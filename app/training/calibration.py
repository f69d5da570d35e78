"""Choosing a match threshold for a target false-match rate.

Lineup's default threshold is set where, among pairs of *different* people
from identities the model is evaluated on, at most the target fraction (1e-3
by default) would be called a match. The genuine match rate at that threshold
says what the strictness costs.
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Calibration:
    threshold: float
    false_match_rate: float
    true_match_rate: float
    genuine_pairs: int
    impostor_pairs: int

    def summary(
        self, *, fmr: float, identities: list[str], skipped: dict[str, int], data: str
    ) -> dict[str, Any]:
        """What a model card records of this calibration, and of the photos it used."""
        return {
            "threshold": round(self.threshold, 6),
            "target_false_match_rate": fmr,
            "false_match_rate": self.false_match_rate,
            "true_match_rate": round(self.true_match_rate, 4),
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            "photos": len(identities),
            "identities": len(set(identities)),
            "skipped_photos": dict(skipped),
            "data": data,
        }


def threshold_at_fmr(impostor: NDArray[np.floating], fmr: float) -> float:
    """The lowest threshold t with |{impostor ≥ t}| ≤ fmr·n (match when similarity ≥ t)."""
    scores = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    allowed = math.floor(fmr * len(scores))
    if allowed >= len(scores):
        return float(scores[-1])
    return float(np.nextafter(scores[allowed], np.inf))


def pair_similarities(
    embeddings: NDArray[np.float32], labels: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Cosine similarities of all genuine pairs and all impostor pairs (i < j)."""
    similarities = embeddings @ embeddings.T
    upper = np.triu_indices(len(labels), k=1)
    same = labels[upper[0]] == labels[upper[1]]
    scores = similarities[upper].astype(np.float64)
    return scores[same], scores[~same]


def calibrate(
    embeddings: NDArray[np.float32], labels: NDArray[np.int64], *, fmr: float
) -> Calibration:
    genuine, impostor = pair_similarities(embeddings, labels)
    threshold = threshold_at_fmr(impostor, fmr)
    return Calibration(
        threshold=threshold,
        false_match_rate=float(np.mean(impostor >= threshold)),
        true_match_rate=float(np.mean(genuine >= threshold)),
        genuine_pairs=len(genuine),
        impostor_pairs=len(impostor),
    )
