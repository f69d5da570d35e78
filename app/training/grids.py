"""Probe → top-k picture rows for the report: successes next to failures.

A reviewer trusts a number more after seeing what it counts, so the report
shows real searches: the probe chip, then the best gallery chip of each of
its top-k subjects, the right person framed in green.
"""

import numpy as np
from numpy.typing import NDArray

from app.training.evaluation import ConditionScores, EvaluationSet
from app.training.metrics import subject_scores
from app.training.plots import GridRow

TOP_K = 5


def grid_rows(
    evaluation: EvaluationSet,
    scores: ConditionScores,
    probe_chips: NDArray[np.uint8],
    *,
    failures: int = 4,
    successes: int = 2,
    k: int = TOP_K,
) -> list[GridRow]:
    """The first `failures` probes whose true subject is not first, then `successes` that are."""
    ranks = scores.ranks()
    missed = _one_per_identity(np.flatnonzero(ranks > 1), scores.probe_labels)[:failures]
    found = _one_per_identity(np.flatnonzero(ranks == 1), scores.probe_labels)[:successes]
    return [
        _row(evaluation, scores, probe_chips, int(i), rank=int(ranks[i]), k=k)
        for i in (*missed, *found)
    ]


def _one_per_identity(probes: NDArray[np.int64], labels: NDArray[np.int64]) -> list[int]:
    """The first of `probes` of each identity, so the rows show different people."""
    _, first = np.unique(labels[probes], return_index=True)
    return [int(probes[i]) for i in np.sort(first)]


def _row(
    evaluation: EvaluationSet,
    scores: ConditionScores,
    probe_chips: NDArray[np.uint8],
    probe: int,
    *,
    rank: int,
    k: int,
) -> GridRow:
    names = evaluation.chips.identities()
    per_subject, subjects = subject_scores(
        scores.similarity[probe : probe + 1], scores.gallery_labels
    )
    order = np.argsort(-per_subject[0], kind="stable")[:k]
    truth = int(scores.probe_labels[probe])
    candidates = []
    for column in order:
        subject = int(subjects[column])
        photo = _best_photo(scores, probe, subject)
        caption = f"{names[subject]}\n{per_subject[0, column]:.3f}"
        candidates.append((evaluation.gallery_chips[photo], caption, subject == truth))
    caption = f"probe of {names[truth]}\ntrue rank {rank}"
    return GridRow(probe=probe_chips[probe], caption=caption, candidates=candidates)


def _best_photo(scores: ConditionScores, probe: int, subject: int) -> int:
    """The gallery photo of `subject` most similar to `probe` (the one its score came from)."""
    photos = np.flatnonzero(scores.gallery_labels == subject)
    return int(photos[np.argmax(scores.similarity[probe, photos])])
