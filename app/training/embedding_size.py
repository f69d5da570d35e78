"""The embedding-size experiment: how many dimensions does a face need?

A linear projection head (128 → d, no bias, orthogonal start) is trained with
triplet loss (semi-hard mining, the default recipe's margin) on top of
a *frozen* model's 128-d descriptors of the training identities, once per
size d. Freezing the network keeps the experiment about the size of the
vector alone and makes it cheap: the training photos are embedded once and
each head trains in seconds. Every head is then measured on the evaluation
identities with the same protocol as the models (`app.training.evaluation`).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from numpy.typing import NDArray
from torch import nn

from app.training.evaluation import (
    ConditionMetrics,
    ConditionScores,
    EvaluationSet,
    ModelEvaluation,
    condition_metrics,
)
from app.training.losses import Margins, build_objective
from app.training.sampling import EpochSampler
from app.training.train_config import TrainConfig

SIZES = (16, 32, 64, 128)
STEPS = 400
LEARNING_RATE = 1e-3
CLASSES_PER_BATCH = 32
M_PER_CLASS = 4


@dataclass(frozen=True)
class SizeResult:
    """The figures of one embedding size on the evaluation identities."""

    dim: int
    clean: ConditionMetrics
    degraded: ConditionMetrics


def train_projection(
    features: NDArray[np.float32],
    labels: NDArray[np.int64],
    *,
    dim: int,
    steps: int = STEPS,
    seed: int = 0,
) -> nn.Linear:
    """A 128 → `dim` head trained with semi-hard triplets on fixed `features`."""
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(features.shape[1], dim, bias=False)
    with torch.no_grad():
        nn.init.orthogonal_(head.weight, generator=generator)
    objective = build_objective(loss="triplet", margins=Margins(TrainConfig.default("margin")))
    optimizer = torch.optim.Adam(head.parameters(), lr=LEARNING_RATE)
    sampler = EpochSampler(
        labels, m=M_PER_CLASS, classes_per_batch=CLASSES_PER_BATCH, batches=steps, seed=seed
    )
    sampler.set_epoch(1)
    order = np.fromiter(sampler, dtype=np.int64).reshape(-1, sampler.batch_size)
    inputs, targets = torch.from_numpy(features), torch.from_numpy(labels)
    for batch in order:
        loss = objective(F.normalize(head(inputs[batch]), dim=1), targets[batch])
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        optimizer.step()
    return head.eval()


def project(head: nn.Linear, features: NDArray[np.float32]) -> NDArray[np.float32]:
    """Unit-length projections of `features`."""
    with torch.inference_mode():
        projected = F.normalize(head(torch.from_numpy(features)), dim=1)
    return projected.numpy().astype(np.float32, copy=False)


def embedding_size_experiment(
    train_features: NDArray[np.float32],
    train_labels: NDArray[np.int64],
    base: ModelEvaluation,
    evaluation: EvaluationSet,
    *,
    sizes: Sequence[int] = SIZES,
    steps: int = STEPS,
) -> list[SizeResult]:
    """Train a head of each size on the training features; measure it on `evaluation`."""
    split = evaluation.split
    results = []
    for dim in sizes:
        head = train_projection(train_features, train_labels, dim=dim, steps=steps)
        gallery = project(head, base.gallery_embeddings)
        conditions = []
        for probe_features in (base.probe_embeddings, base.degraded_probe_embeddings):
            probes = project(head, probe_features)
            scores = ConditionScores(probes @ gallery.T, split.probe_labels, split.gallery_labels)
            conditions.append(
                condition_metrics(scores, probe_embeddings=probes, gallery_embeddings=gallery)
            )
        results.append(SizeResult(dim, *conditions))
    return results
