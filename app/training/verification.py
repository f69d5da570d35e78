"""Face verification ("same person or not?") scored with LFW's k-fold protocol.

A threshold on similarity turns scores into decisions. Choosing it on the
pairs it is then scored on would flatter the model, so LFW's protocol picks
the threshold on k−1 folds and measures accuracy on the fold left out.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class ImagePair:
    """Two photos of a pairs file and whether they show the same person."""

    first: Path
    second: Path
    same: bool
    fold: int


def read_pairs(path: Path) -> list[ImagePair]:
    """Parse a pairs file in LFW's format; image paths are resolved beside the file.

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
        _parse_pair(path.parent, fields, fold=index // (2 * per_fold))
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


def best_threshold(similarities: NDArray[np.floating], same: NDArray[np.bool_]) -> float:
    """The similarity threshold (match when ≥ it) with the highest accuracy on these pairs.

    Candidates are midpoints between consecutive sorted scores, plus the two
    extremes; ties go to the smallest such threshold. Every candidate is
    scored at once from sorted genuine and impostor scores, so hundreds of
    thousands of pairs (a whole gallery × probes matrix) take milliseconds.
    """
    scores = np.asarray(similarities, dtype=np.float64).ravel()
    same = np.asarray(same, dtype=bool).ravel()
    values = np.unique(scores)
    candidates = np.concatenate(
        [[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]]
    )
    genuine, impostor = np.sort(scores[same]), np.sort(scores[~same])
    accepted_genuine = len(genuine) - np.searchsorted(genuine, candidates, side="left")
    rejected_impostors = np.searchsorted(impostor, candidates, side="left")
    accuracies = (accepted_genuine + rejected_impostors) / len(scores)
    return float(candidates[int(np.argmax(accuracies))])


def verification_accuracy(
    similarities: NDArray[np.floating], same: NDArray[np.bool_], *, threshold: float
) -> float:
    """Fraction of pairs where `similarity ≥ threshold` agrees with `same`."""
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
    """A pairs file scored by one model: mean held-out accuracy, per fold, and the AUC.

    `unscored` pairs had a photo without a usable face; they count as "different
    person" decisions (similarity −1), as a verification system would answer.
    """

    pairs: int
    unscored: int
    accuracy: float
    folds: list[FoldResult]
    auc: float


def score_pairs(
    pairs: list[ImagePair], embeddings: Mapping[Path, NDArray[np.float32]]
) -> PairsResult:
    """Score every pair with the cosine similarity of its photos' embeddings, k-fold."""
    missing = [p for p in pairs if p.first not in embeddings or p.second not in embeddings]
    similarities = np.array(
        [
            float(embeddings[p.first] @ embeddings[p.second]) if p not in missing else -1.0
            for p in pairs
        ]
    )
    same = np.array([pair.same for pair in pairs])
    folds = kfold_accuracy(similarities, same, np.array([pair.fold for pair in pairs]))
    return PairsResult(
        pairs=len(pairs),
        unscored=len(missing),
        accuracy=float(np.mean([fold.accuracy for fold in folds])),
        folds=folds,
        auc=float(roc_auc_score(same, similarities)),
    )
