"""Face verification ("same person or not?") scored with LFW's k-fold protocol.

A threshold on similarity turns scores into decisions. Choosing it on the
pairs it is then scored on would flatter the model, so LFW's protocol picks
the threshold on k−1 folds and measures accuracy on the fold left out.

A pair whose photo has no usable face has no similarity: it is NaN here, and
every function below reads it as a "different person" answer at every
threshold (`UNSCORED_RULE`), as a verification system would answer. It is
never dropped, which would flatter the model on exactly the hard photos.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from app.training.metrics import tar_at_far

UNSCORED_RULE = (
    "a pair with a photo without a usable face (none found, or unreadable) is a "
    "different-person answer at every threshold: wrong for a same-person pair, right for a "
    "different-person pair; it counts in accuracy, TAR and AUC"
)


class PairsNotScorable(ValueError):
    """The pairs cannot be scored: photos missing, or no pair with a face in both photos."""


@dataclass(frozen=True)
class ImagePair:
    """Two photos of a pairs file and whether they show the same person."""

    first: Path
    second: Path
    same: bool
    fold: int


def read_pairs(path: Path, *, images: Path | None = None) -> list[ImagePair]:
    """Parse a pairs file in LFW's format; image paths are resolved under `images`
    (default: the pairs file's folder).

    The first line is `folds pairs_per_fold`; each fold then lists its
    same-person lines (`name i j`) followed by its different-person lines
    (`name1 i name2 j`); image i of `name` is `name/name_000i.jpg`.
    """
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    folds, per_fold = (int(value) for value in lines[0])
    body = lines[1:]
    if len(body) != folds * per_fold * 2:
        raise ValueError(f"{path}: expected {folds * per_fold * 2} pairs, found {len(body)}")
    return [
        _parse_pair(images or path.parent, fields, fold=index // (2 * per_fold))
        for index, fields in enumerate(body)
    ]


def _parse_pair(root: Path, fields: list[str], *, fold: int) -> ImagePair:
    def image(name: str, number: str) -> Path:
        return root / name / f"{name}_{int(number):04d}.jpg"

    if len(fields) == 3:
        name, first, second = fields
        return ImagePair(image(name, first), image(name, second), same=True, fold=fold)
    if len(fields) == 4:
        name1, first, name2, second = fields
        return ImagePair(image(name1, first), image(name2, second), same=False, fold=fold)
    raise ValueError(f"a pair line has 3 or 4 fields, not {len(fields)}: {' '.join(fields)}")


def pair_photos(pairs: list[ImagePair]) -> list[Path]:
    """Every photo the pairs name, once each, sorted."""
    return sorted({photo for pair in pairs for photo in (pair.first, pair.second)})


def check_photos(pairs: list[ImagePair], *, images: Path) -> None:
    """Raise `PairsNotScorable` unless every photo of `pairs` is a file under `images`.

    A photo that is not there means the wrong folder or layout, not a hard face,
    so it is refused rather than scored as a wrong answer.
    """
    photos = pair_photos(pairs)
    missing = [photo for photo in photos if not photo.is_file()]
    if not missing:
        return
    raise PairsNotScorable(
        f"{len(missing)} of the {len(photos)} photos named in the pairs file are missing "
        f"from {images} (first: {missing[0]}); --images should be the folder holding one "
        "sub-folder per person (NAME/NAME_0001.jpg)"
    )


def best_threshold(similarities: NDArray[np.floating], same: NDArray[np.bool_]) -> float:
    """The similarity threshold (match when ≥ it) with the highest accuracy on these pairs.

    Candidates are midpoints between consecutive sorted scores, plus the two
    extremes; ties go to the smallest such threshold. Every candidate is
    scored at once from sorted genuine and impostor scores, so hundreds of
    thousands of pairs (a whole gallery × probes matrix) take milliseconds.
    Unscored (NaN) pairs are "different person" at every candidate.
    """
    scores = np.asarray(similarities, dtype=np.float64).ravel()
    same = np.asarray(same, dtype=bool).ravel()
    scored = ~np.isnan(scores)
    if not scored.any():
        raise PairsNotScorable("no pair has a similarity to choose a threshold on")
    values = np.unique(scores[scored])
    candidates = np.concatenate(
        [[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]]
    )
    genuine, impostor = np.sort(scores[same & scored]), np.sort(scores[~same & scored])
    accepted_genuine = len(genuine) - np.searchsorted(genuine, candidates, side="left")
    rejected_impostors = np.searchsorted(impostor, candidates, side="left")
    rejected_impostors += np.count_nonzero(~same & ~scored)
    accuracies = (accepted_genuine + rejected_impostors) / len(scores)
    return float(candidates[int(np.argmax(accuracies))])


def verification_accuracy(
    similarities: NDArray[np.floating], same: NDArray[np.bool_], *, threshold: float
) -> float:
    """Fraction of pairs where `similarity ≥ threshold` agrees with `same` (NaN: never ≥)."""
    decided = np.asarray(similarities) >= threshold
    return float(np.mean(decided == np.asarray(same, dtype=bool)))


@dataclass(frozen=True)
class FoldResult:
    """One held-out fold: the threshold chosen on the others and its accuracy here."""

    fold: int
    threshold: float
    accuracy: float


def kfold_accuracy(
    similarities: NDArray[np.floating], same: NDArray[np.bool_], folds: NDArray[np.integer]
) -> list[FoldResult]:
    """For each fold, choose the threshold on the other folds and score it on this one."""
    similarities, same, folds = np.asarray(similarities), np.asarray(same), np.asarray(folds)
    results = []
    for fold in np.unique(folds):
        held_out = folds == fold
        threshold = best_threshold(similarities[~held_out], same[~held_out])
        accuracy = verification_accuracy(
            similarities[held_out], same[held_out], threshold=threshold
        )
        results.append(FoldResult(fold=int(fold), threshold=threshold, accuracy=accuracy))
    return results


@dataclass(frozen=True)
class PairsResult:
    """A pairs file scored by one model.

    `accuracy` and `accuracy_std` are the mean and the population standard
    deviation (ddof 0, as insightface and facenet report LFW) of the held-out
    folds' accuracies. `tar_at_far_1e3` is over every pair.
    `calibrated_accuracy` is the accuracy at the model's own calibrated
    threshold (from its card), None without one. `unscored` pairs follow
    `UNSCORED_RULE`.
    """

    pairs: int
    genuine_pairs: int
    impostor_pairs: int
    unscored: int
    folds: list[FoldResult]
    accuracy: float
    accuracy_std: float
    tar_at_far_1e3: float
    auc: float
    calibrated_threshold: float | None
    calibrated_accuracy: float | None

    def to_json(self) -> dict[str, Any]:
        """The figures as JSON-ready values, named as in model cards."""
        return {
            "pairs": self.pairs,
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            "unscored": self.unscored,
            "folds": [
                {"fold": f.fold, "threshold": f.threshold, "accuracy": f.accuracy}
                for f in self.folds
            ],
            "accuracy_mean": self.accuracy,
            "accuracy_std": self.accuracy_std,
            "tar_at_far_1e-3": self.tar_at_far_1e3,
            "auc": self.auc,
            "calibrated_threshold": self.calibrated_threshold,
            "accuracy_at_calibrated_threshold": self.calibrated_accuracy,
        }


def score_pairs(
    pairs: list[ImagePair],
    embeddings: Mapping[Path, NDArray[np.float32]],
    *,
    calibrated_threshold: float | None = None,
) -> PairsResult:
    """Score every pair with the cosine similarity of its photos' embeddings, k-fold.

    A pair with a photo missing from `embeddings` is unscored (`UNSCORED_RULE`).
    """
    similarities = np.array(
        [
            float(embeddings[p.first] @ embeddings[p.second])
            if p.first in embeddings and p.second in embeddings
            else np.nan
            for p in pairs
        ]
    )
    if np.isnan(similarities).all():
        raise PairsNotScorable("no pair has a face found in both of its photos")
    same = np.array([pair.same for pair in pairs])
    folds = kfold_accuracy(similarities, same, np.array([pair.fold for pair in pairs]))
    ranked = _ranked_last(similarities)
    calibrated = (
        None
        if calibrated_threshold is None
        else verification_accuracy(similarities, same, threshold=calibrated_threshold)
    )
    return PairsResult(
        pairs=len(pairs),
        genuine_pairs=int(same.sum()),
        impostor_pairs=int((~same).sum()),
        unscored=int(np.isnan(similarities).sum()),
        folds=folds,
        accuracy=float(np.mean([fold.accuracy for fold in folds])),
        accuracy_std=float(np.std([fold.accuracy for fold in folds])),
        tar_at_far_1e3=tar_at_far(ranked[same], ranked[~same], far=1e-3),
        auc=float(roc_auc_score(same, ranked)),
        calibrated_threshold=calibrated_threshold,
        calibrated_accuracy=calibrated,
    )


def _ranked_last(similarities: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unscored (NaN) pairs moved below every scored one, where ROC and TAR reject them."""
    unscored = np.isnan(similarities)
    return np.where(unscored, np.nanmin(similarities) - 1.0, similarities)
