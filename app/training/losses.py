"""Metric-learning objectives by name: a loss and the miner that picks what it sees.

Everything pytorch-metric-learning would otherwise choose silently is spelled
out here, because it decides what a margin means:

- Distance: Euclidean distance between L2-normalised embeddings
  (`LpDistance(normalize_embeddings=True, p=2, power=1)`), for loss and miner
  alike. Embeddings live on the unit sphere, so distances lie in [0, 2] and
  a margin of 0.2 is 0.2 of that chord length, whatever the network's scale.
- Reduction: `AvgNonZeroReducer`, the mean over the triplets (or pairs) whose
  loss is positive; triplets already satisfied do not dilute the average.

Triplet miners (from the anchor's point of view, with d(a,p) and d(a,n)):

- `semihard`: d(a,p) < d(a,n) ≤ d(a,p) + margin (FaceNet's choice; default).
- `hard`: d(a,n) ≤ d(a,p), the negative is nearer than the positive.
- `all`: every triplet violating the margin, d(a,n) ≤ d(a,p) + margin.
- `batch-hard`: per anchor, its farthest positive and nearest negative.

Contrastive miners: `pairs` keeps positive pairs farther than `pos_margin`
and negative pairs nearer than `neg_margin` (exactly those with a loss);
`all` gives the loss every pair of the batch.

`distillation_loss` is the term training may add to either: it asks each
embedding to land where a fixed teacher put a target image, which needs no
labels and no mining.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F  # noqa: N812 - the conventional alias
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import ContrastiveLoss, TripletMarginLoss
from pytorch_metric_learning.losses.base_metric_loss_function import BaseMetricLossFunction
from pytorch_metric_learning.miners import (
    BatchHardMiner,
    PairMarginMiner,
    TripletMarginMiner,
)
from pytorch_metric_learning.miners.base_miner import BaseMiner
from pytorch_metric_learning.reducers import AvgNonZeroReducer
from torch import Tensor


@dataclass(frozen=True)
class Margins:
    """Triplet `margin`; contrastive `pos_margin` (pull closer than) and `neg_margin`
    (push farther than). All are distances between unit vectors."""

    margin: float = 0.2
    pos_margin: float = 0.0
    neg_margin: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.pos_margin < self.neg_margin <= 2:
            raise ValueError(
                "contrastive margins need 0 <= pos_margin < neg_margin <= 2 (unit-sphere "
                f"distances), not pos_margin={self.pos_margin}, neg_margin={self.neg_margin}"
            )


def unit_sphere_distance() -> LpDistance:
    """Euclidean distance between L2-normalised embeddings."""
    return LpDistance(normalize_embeddings=True, p=2, power=1)


@dataclass(frozen=True)
class Objective:
    """A loss and its optional miner; calling it gives the batch's scalar loss."""

    loss: BaseMetricLossFunction
    miner: BaseMiner | None

    def __call__(
        self,
        embeddings: Tensor,
        labels: Tensor,
        *,
        reference: Tensor | None = None,
        reference_labels: Tensor | None = None,
    ) -> Tensor:
        """The batch's loss. With a `reference`, anchors are `embeddings` and their
        positives and negatives are drawn from the reference set instead of the batch."""
        mined = (
            None
            if self.miner is None
            else self.miner(embeddings, labels, reference, reference_labels)
        )
        loss: Tensor = self.loss(embeddings, labels, mined, reference, reference_labels)
        return loss


def distillation_loss(embeddings: Tensor, targets: Tensor) -> Tensor:
    """Mean of 1 − cos(embedding, target) over the rows: 0 when each embedding points
    where its target does, whatever the lengths.

    On the unit sphere 1 − cos is half the squared distance, so it pulls hardest
    on the embeddings farthest from their targets; a CCTV still whose target is
    the teacher's embedding of the clean photo is pulled onto that photo.
    """
    cosine = (F.normalize(embeddings, dim=1) * F.normalize(targets, dim=1)).sum(dim=1)
    return (1.0 - cosine).mean()


MinerFactory = Callable[[Margins], BaseMiner | None]


def _triplet_miner(kind: str) -> MinerFactory:
    def build(margins: Margins) -> BaseMiner:
        return TripletMarginMiner(
            margin=margins.margin, type_of_triplets=kind, distance=unit_sphere_distance()
        )

    return build


TRIPLET_MINERS: dict[str, MinerFactory] = {
    "semihard": _triplet_miner("semihard"),
    "hard": _triplet_miner("hard"),
    "all": _triplet_miner("all"),
    "batch-hard": lambda _: BatchHardMiner(distance=unit_sphere_distance()),
}

PAIR_MINERS: dict[str, MinerFactory] = {
    "pairs": lambda m: PairMarginMiner(
        pos_margin=m.pos_margin, neg_margin=m.neg_margin, distance=unit_sphere_distance()
    ),
    "all": lambda _: None,
}


def _triplet_loss(margins: Margins) -> BaseMetricLossFunction:
    return TripletMarginLoss(
        margin=margins.margin,
        swap=False,
        smooth_loss=False,
        triplets_per_anchor="all",
        distance=unit_sphere_distance(),
        reducer=AvgNonZeroReducer(),
    )


def _contrastive_loss(margins: Margins) -> BaseMetricLossFunction:
    return ContrastiveLoss(
        pos_margin=margins.pos_margin,
        neg_margin=margins.neg_margin,
        distance=unit_sphere_distance(),
        reducer=AvgNonZeroReducer(),
    )


LossFactory = Callable[[Margins], BaseMetricLossFunction]

LOSSES: dict[str, tuple[LossFactory, dict[str, MinerFactory]]] = {
    "triplet": (_triplet_loss, TRIPLET_MINERS),
    "contrastive": (_contrastive_loss, PAIR_MINERS),
}

DEFAULT_MINERS = {"triplet": "semihard", "contrastive": "pairs"}


def build_objective(*, loss: str, miner: str | None = None, margins: Margins) -> Objective:
    """The objective `loss` with `miner` (the loss's default when None); names are checked."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    make_loss, miners = LOSSES[loss]
    miner = DEFAULT_MINERS[loss] if miner is None else miner
    if miner not in miners:
        raise ValueError(f"{loss} loss has no miner {miner!r}; choose one of {', '.join(miners)}")
    return Objective(loss=make_loss(margins), miner=miners[miner](margins))
