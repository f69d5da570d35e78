"""Loss and miner glue against hand-computed values on four points of the unit circle.

Class 0 sits at 0° and 60°, class 1 at 100° and 180°. The Euclidean (chord)
distance between unit vectors θ apart is 2·sin(θ/2), so every distance, every
mined triplet and every loss below can be worked out by hand.
"""

import math

import pytest
import torch

from app.training.losses import Margins, build_objective, distillation_loss

ANGLES = (0.0, 60.0, 100.0, 180.0)
LABELS = torch.tensor([0, 0, 1, 1])


def chord(degrees: float) -> float:
    return 2 * math.sin(math.radians(degrees) / 2)


def points(scales: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    return torch.tensor(
        [
            [s * math.cos(math.radians(a)), s * math.sin(math.radians(a))]
            for a, s in zip(ANGLES, scales, strict=True)
        ],
        dtype=torch.float64,
    )


def mined(miner: str, margin: float = 0.6) -> set[tuple[int, int, int]]:
    objective = build_objective(loss="triplet", miner=miner, margins=Margins(margin))
    assert objective.miner is not None
    anchors, positives, negatives = objective.miner(points(), LABELS)
    return set(zip(anchors.tolist(), positives.tolist(), negatives.tolist(), strict=True))


# With margin 0.6, triplet by triplet, d(a,n) − d(a,p):
#   (0,1,2) chord100 − chord60 = 0.532  semi-hard     (0,1,3) 2 − 1 = 1.0        easy
#   (1,0,2) chord40 − chord60 = −0.316  hard          (1,0,3) chord120 − 1 = 0.732 easy
#   (2,3,0) chord100 − chord80 = 0.246  semi-hard     (2,3,1) chord40 − chord80 = −0.602 hard
#   (3,2,0) 2 − chord80 = 0.714         easy          (3,2,1) chord120 − chord80 = 0.446 semi-hard
SEMIHARD = {(0, 1, 2), (2, 3, 0), (3, 2, 1)}
HARD = {(1, 0, 2), (2, 3, 1)}


def test_semihard_miner_picks_negatives_inside_the_margin_beyond_the_positive() -> None:
    assert mined("semihard") == SEMIHARD


def test_hard_miner_picks_negatives_nearer_than_the_positive() -> None:
    assert mined("hard") == HARD


def test_all_miner_picks_every_triplet_violating_the_margin() -> None:
    assert mined("all") == SEMIHARD | HARD


def test_batch_hard_miner_takes_each_anchors_nearest_negative() -> None:
    # One positive per anchor; nearest negatives: 0→2 (chord100 < 2), 1→2, 2→1, 3→1.
    assert mined("batch-hard") == {(0, 1, 2), (1, 0, 2), (2, 3, 1), (3, 2, 1)}


def test_triplet_loss_averages_the_violating_triplets_only() -> None:
    margin = 0.6
    objective = build_objective(loss="triplet", miner="all", margins=Margins(margin))
    losses = [
        chord(60) - chord(100) + margin,
        chord(60) - chord(40) + margin,
        chord(80) - chord(100) + margin,
        chord(80) - chord(40) + margin,
        chord(80) - chord(120) + margin,
    ]
    expected = sum(losses) / len(losses)
    assert objective(points(), LABELS).item() == pytest.approx(expected, abs=1e-9)


def test_triplet_loss_measures_distance_between_normalised_embeddings() -> None:
    """Scaling a point changes nothing: the loss sees unit vectors, so margins are chords."""
    objective = build_objective(loss="triplet", miner="semihard", margins=Margins(0.6))
    expected = (
        (chord(60) - chord(100) + 0.6)
        + (chord(80) - chord(100) + 0.6)
        + (chord(80) - chord(120) + 0.6)
    ) / 3
    assert objective(points(), LABELS).item() == pytest.approx(expected, abs=1e-9)
    scaled = points((3.0, 0.5, 10.0, 0.1))
    assert objective(scaled, LABELS).item() == pytest.approx(expected, abs=1e-9)


def test_satisfied_triplets_give_zero_loss_and_a_usable_gradient() -> None:
    embeddings = points().clone().requires_grad_(True)
    objective = build_objective(loss="triplet", miner="semihard", margins=Margins(0.01))
    loss = objective(embeddings, LABELS)
    loss.backward()
    assert loss.item() == 0.0
    assert embeddings.grad is not None


def test_contrastive_loss_adds_the_positive_and_negative_pair_averages() -> None:
    margins = Margins(pos_margin=0.0, neg_margin=1.6)
    # Positive pairs (each counted both ways): 0–1 at chord60, 2–3 at chord80.
    positive = (chord(60) + chord(80)) / 2
    # Negative pairs closer than 1.6: 0–2 (chord100 = 1.532) and 1–2 (chord40); 0–3, 1–3 are not.
    negative = ((1.6 - chord(100)) + (1.6 - chord(40))) / 2
    for miner in ("pairs", "all"):
        objective = build_objective(loss="contrastive", miner=miner, margins=margins)
        assert objective(points(), LABELS).item() == pytest.approx(positive + negative, abs=1e-9)


def test_pair_miner_keeps_exactly_the_pairs_that_carry_loss() -> None:
    objective = build_objective(
        loss="contrastive", miner="pairs", margins=Margins(pos_margin=1.1, neg_margin=1.6)
    )
    assert objective.miner is not None
    a1, p, a2, n = objective.miner(points(), LABELS)
    assert set(zip(a1.tolist(), p.tolist(), strict=True)) == {(2, 3), (3, 2)}  # chord80 > 1.1
    assert set(zip(a2.tolist(), n.tolist(), strict=True)) == {(0, 2), (2, 0), (1, 2), (2, 1)}


def test_default_miners_and_unknown_names() -> None:
    assert build_objective(loss="triplet", margins=Margins()).miner.__class__.__name__ == (
        "TripletMarginMiner"
    )
    with pytest.raises(ValueError, match="unknown loss"):
        build_objective(loss="arcface", margins=Margins())
    with pytest.raises(ValueError, match="no miner 'semihard'"):
        build_objective(loss="contrastive", miner="semihard", margins=Margins())


def test_with_a_reference_anchors_meet_positives_and_negatives_from_the_reference_only() -> None:
    """One anchor at 0° (class 0); reference: class 0 at 60°, class 1 at 100° and 180°.

    Margin 1.0, miner "all": both triplets violate it. d(a,p) = chord 60° = 1;
    d(a,n) = chord 100° ≈ 1.532 and chord 180° = 2. Losses 1 − 1.532 + 1 ≈ 0.468
    and 1 − 2 + 1 = 0: only the first is positive, so the average over positive
    triplets is 0.468.
    """
    objective = build_objective(loss="triplet", miner="all", margins=Margins(1.0))
    anchor = points()[:1]
    reference = points()[1:]
    loss = objective(
        anchor, LABELS[:1], reference=reference, reference_labels=torch.tensor([0, 1, 1])
    )
    assert float(loss) == pytest.approx(1.0 - chord(100.0) + 1.0)


def test_distillation_averages_one_minus_the_cosine_to_each_target() -> None:
    """Targets 0° and 90° away from their embeddings, at other lengths: (0 + 1) / 2."""
    embeddings = points((2.0, 1.0, 1.0, 1.0))[:2]  # 0° and 60°
    targets = torch.tensor([[3.0, 0.0], [math.cos(math.radians(150)), math.sin(math.radians(150))]])
    loss = distillation_loss(embeddings, targets.double())
    assert float(loss) == pytest.approx((0.0 + 1.0) / 2)


def test_distillation_pulls_each_embedding_towards_its_target() -> None:
    embeddings = points()[:2].clone().requires_grad_(True)
    targets = points()[2:]  # 100° and 180°: both embeddings lie clockwise of their targets
    distillation_loss(embeddings, targets).backward()
    assert embeddings.grad is not None
    stepped = embeddings.detach() - 0.1 * embeddings.grad
    before = distillation_loss(embeddings.detach(), targets)
    assert float(distillation_loss(stepped, targets)) < float(before)
