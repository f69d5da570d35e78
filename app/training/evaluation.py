"""How well a model recognises people it never saw: identification and verification.

The protocol, the same for every model so their figures compare:

- The evaluation identities are disjoint from training (celeba's `val`
  part). Each identity's first `GALLERY_PHOTOS` usable photos (sorted file
  names) are its gallery; the rest of its photos are probes.
- Every probe is searched twice: as it is (*clean*), and CCTV-degraded
  (`app.training.probes`: face shrunk to 24–32 px and scaled back, blur
  σ = 1, JPEG quality 30, greyscale; seeded), against the clean gallery, which
  is how an investigator's enrolled photos meet a camera still.
- Identification: rank-1 and rank-5 of the true subject (a subject's score
  is its best gallery photo), MAP@R, and open-set FNIR at FPIR = 1 %, the
  non-mated searches made by leaving the probe's own subject out.
- Verification: every probe × gallery photo pair is a comparison, genuine
  when both show one person. ROC, AUC, TAR at FAR 1e-2 and 1e-3, and
  accuracy under a k-fold protocol whose folds are disjoint sets of probe
  identities (the threshold is chosen on the other folds).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.training.chips import ChipSet
from app.training.metrics import (
    OpenSetPoint,
    RocCurve,
    fnir_at_fpir,
    map_at_r,
    open_set_searches,
    rank_k_accuracy,
    roc_curve,
    tar_at_far,
    true_subject_ranks,
)
from app.training.probes import cctv_probe_chips
from app.training.verification import kfold_accuracy
from app.vision.alignment_template import DLIB_150, AlignmentTemplate

GALLERY_PHOTOS = 3
OPEN_SET_FPIR = 0.01
VERIFICATION_FOLDS = 10
DEGRADATION_SEED = 0

Embed = Callable[[NDArray[np.uint8]], NDArray[np.float32]]
"""N×S×S×3 uint8 chips → N×D unit-length float32 embeddings."""


@dataclass(frozen=True)
class GalleryProbeSplit:
    """Chip indices of the gallery and of the probes, and their identity labels."""

    gallery: NDArray[np.int64]
    probes: NDArray[np.int64]
    gallery_labels: NDArray[np.int64]
    probe_labels: NDArray[np.int64]


def split_gallery_probes(
    chips: ChipSet, *, per_identity: int = GALLERY_PHOTOS
) -> GalleryProbeSplit:
    """The first `per_identity` chips of each identity (in file-name order) and the rest."""
    labels = chips.labels()
    seen: dict[int, int] = {}
    in_gallery = np.zeros(len(labels), dtype=bool)
    for index, label in enumerate(labels.tolist()):
        in_gallery[index] = seen.get(label, 0) < per_identity
        seen[label] = seen.get(label, 0) + 1
    gallery, probes = np.flatnonzero(in_gallery), np.flatnonzero(~in_gallery)
    return GalleryProbeSplit(gallery, probes, labels[gallery], labels[probes])


@dataclass(frozen=True)
class EvaluationSet:
    """The chips a model is evaluated on: clean gallery, clean probes and degraded probes."""

    chips: ChipSet
    split: GalleryProbeSplit
    gallery_chips: NDArray[np.uint8]
    probe_chips: NDArray[np.uint8]
    degraded_probe_chips: NDArray[np.uint8]


def build_evaluation_set(
    chips: ChipSet,
    *,
    gallery_photos: int = GALLERY_PHOTOS,
    seed: int = DEGRADATION_SEED,
    template: AlignmentTemplate = DLIB_150,
) -> EvaluationSet:
    """Load the gallery and probe chips once and make the degraded probes (the slow part).

    `chips` must be cut for `template`; the degraded probes are cut for it too. The
    damage depends only on the photo and the seed, so every template's set holds the
    same damaged faces.
    """
    split = split_gallery_probes(chips, per_identity=gallery_photos)
    degraded = cctv_probe_chips(chips, split.probes.tolist(), seed=seed, template=template)
    return EvaluationSet(
        chips=chips,
        split=split,
        gallery_chips=chips.stack(split.gallery),
        probe_chips=chips.stack(split.probes),
        degraded_probe_chips=degraded,
    )


@dataclass(frozen=True)
class ConditionScores:
    """Probe × gallery-photo similarities under one probe condition, with the labels."""

    similarity: NDArray[np.float32]
    probe_labels: NDArray[np.int64]
    gallery_labels: NDArray[np.int64]

    @property
    def same_person(self) -> NDArray[np.bool_]:
        same: NDArray[np.bool_] = self.probe_labels[:, None] == self.gallery_labels[None, :]
        return same

    @property
    def genuine(self) -> NDArray[np.float32]:
        return self.similarity[self.same_person]

    @property
    def impostor(self) -> NDArray[np.float32]:
        return self.similarity[~self.same_person]

    def ranks(self) -> NDArray[np.int64]:
        """Each probe's true subject's rank (1 = top)."""
        return true_subject_ranks(self.similarity, self.probe_labels, self.gallery_labels)


@dataclass(frozen=True)
class ConditionMetrics:
    """The figures of one probe condition (clean or degraded)."""

    probes: int
    rank1: float
    rank5: float
    map_at_r: float
    open_set: OpenSetPoint
    auc: float
    tar_at_far_1e2: float
    tar_at_far_1e3: float
    verification_accuracy: float

    def as_json(self) -> dict[str, float | int]:
        return {
            "probes": self.probes,
            "rank1": self.rank1,
            "rank5": self.rank5,
            "map_at_r": self.map_at_r,
            "fnir_at_fpir_1pct": self.open_set.fnir,
            "fpir_reached": self.open_set.fpir,
            "open_set_threshold": self.open_set.threshold,
            "auc": self.auc,
            "tar_at_far_1e-2": self.tar_at_far_1e2,
            "tar_at_far_1e-3": self.tar_at_far_1e3,
            "verification_accuracy": self.verification_accuracy,
        }


def condition_metrics(
    scores: ConditionScores,
    *,
    probe_embeddings: NDArray[np.float32],
    gallery_embeddings: NDArray[np.float32],
) -> ConditionMetrics:
    """Identification and verification figures of one probe condition."""
    similarity, probes, gallery = scores.similarity, scores.probe_labels, scores.gallery_labels
    searches = open_set_searches(similarity, probes, gallery)
    genuine, impostor = scores.genuine, scores.impostor
    return ConditionMetrics(
        probes=len(probes),
        rank1=rank_k_accuracy(similarity, probes, gallery, k=1),
        rank5=rank_k_accuracy(similarity, probes, gallery, k=5),
        map_at_r=map_at_r(probe_embeddings, probes, gallery_embeddings, gallery),
        open_set=fnir_at_fpir(searches.mated, searches.nonmated, fpir=OPEN_SET_FPIR),
        auc=roc_curve(genuine, impostor).auc,
        tar_at_far_1e2=tar_at_far(genuine, impostor, far=1e-2),
        tar_at_far_1e3=tar_at_far(genuine, impostor, far=1e-3),
        verification_accuracy=_kfold_accuracy(scores),
    )


def _kfold_accuracy(scores: ConditionScores) -> float:
    """Mean held-out accuracy, folds made of whole probe identities."""
    folds = np.broadcast_to(
        (scores.probe_labels % VERIFICATION_FOLDS)[:, None], scores.similarity.shape
    )
    results = kfold_accuracy(scores.similarity.ravel(), scores.same_person.ravel(), folds.ravel())
    return float(np.mean([result.accuracy for result in results]))


@dataclass(frozen=True)
class ModelEvaluation:
    """One model's embeddings, scores and figures on an `EvaluationSet`."""

    name: str
    gallery_embeddings: NDArray[np.float32]
    probe_embeddings: NDArray[np.float32]
    degraded_probe_embeddings: NDArray[np.float32]
    clean: ConditionScores
    degraded: ConditionScores
    clean_metrics: ConditionMetrics
    degraded_metrics: ConditionMetrics

    def roc(self, condition: str) -> RocCurve:
        scores = self.clean if condition == "clean" else self.degraded
        return roc_curve(scores.genuine, scores.impostor)

    def metrics_json(self) -> dict[str, dict[str, float | int]]:
        return {"clean": self.clean_metrics.as_json(), "degraded": self.degraded_metrics.as_json()}


def evaluate_model(name: str, embed: Embed, evaluation: EvaluationSet) -> ModelEvaluation:
    """Embed the evaluation set with `embed` and measure both probe conditions."""
    split = evaluation.split
    gallery = embed(evaluation.gallery_chips)
    probes = embed(evaluation.probe_chips)
    degraded = embed(evaluation.degraded_probe_chips)
    clean_scores = ConditionScores(probes @ gallery.T, split.probe_labels, split.gallery_labels)
    degraded_scores = ConditionScores(
        degraded @ gallery.T, split.probe_labels, split.gallery_labels
    )
    return ModelEvaluation(
        name=name,
        gallery_embeddings=gallery,
        probe_embeddings=probes,
        degraded_probe_embeddings=degraded,
        clean=clean_scores,
        degraded=degraded_scores,
        clean_metrics=condition_metrics(
            clean_scores, probe_embeddings=probes, gallery_embeddings=gallery
        ),
        degraded_metrics=condition_metrics(
            degraded_scores, probe_embeddings=degraded, gallery_embeddings=gallery
        ),
    )
