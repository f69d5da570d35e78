"""The evaluation protocol: gallery/probe split, per-condition figures, breakdowns, thresholds."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from app.training.breakdown import at_threshold, rank1_breakdown
from app.training.chips import ChipRecord, ChipSet
from app.training.evaluate_run import EvaluationData, evaluate_models
from app.training.evaluation import (
    ConditionScores,
    EvaluationSet,
    ModelEvaluation,
    condition_metrics,
    split_gallery_probes,
)
from app.training.face_tree import identities
from app.training.verification import best_threshold
from app.vision.embedder import FaceEmbedder

MODELS = Path(__file__).resolve().parents[2] / "models"


def _record(identity: str, number: int) -> ChipRecord:
    return ChipRecord(
        identity=identity,
        photo=f"{identity}/{number:03d}.jpg",
        chip_file=f"chips/{identity}-{number}.png",
        box_width=40.0 + 20 * number,
        chip_face_width=70.0,
        landmarks=((50, 60), (100, 60), (75, 90), (55, 115), (95, 115)),
        faces_in_photo=1,
    )


def _chip_set(photos: dict[str, int]) -> ChipSet:
    records = [_record(name, n) for name, count in photos.items() for n in range(count)]
    return ChipSet(Path("/nowhere"), Path("/nowhere"), records, Counter())


def test_the_gallery_is_each_identitys_first_photos_and_the_rest_are_probes() -> None:
    chips = _chip_set({"ann": 5, "bob": 3, "cy": 2})
    split = split_gallery_probes(chips, per_identity=3)
    assert split.gallery.tolist() == [0, 1, 2, 5, 6, 7, 8, 9]
    assert split.probes.tolist() == [3, 4]
    assert split.gallery_labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert split.probe_labels.tolist() == [0, 0]


# Two gallery photos each of subjects 0, 1 and 2; three probes, one of each.
GALLERY = np.array([0, 0, 1, 1, 2, 2])
PROBES = np.array([0, 1, 2])
SIMILARITY = np.array(
    [
        [0.9, 0.2, 0.3, 0.1, 0.0, 0.2],  # subject 0 first at 0.9
        [0.8, 0.1, 0.6, 0.5, 0.3, 0.2],  # subject 0 (0.8) beats the true subject 1 (0.6)
        [0.1, 0.2, 0.4, 0.3, 0.7, 0.2],  # subject 2 first at 0.7
    ],
    dtype=np.float32,
)


def _embeddings_for(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Any embeddings will do for MAP@R here; one-hot gallery, probes = similarity rows."""
    return similarity.astype(np.float32), np.eye(similarity.shape[1], dtype=np.float32)


def test_condition_metrics_match_hand_computed_values() -> None:
    scores = ConditionScores(SIMILARITY, PROBES, GALLERY)
    probes, gallery = _embeddings_for(SIMILARITY)
    metrics = condition_metrics(scores, probe_embeddings=probes, gallery_embeddings=gallery)
    assert metrics.probes == 3
    assert metrics.rank1 == pytest.approx(2 / 3)
    assert metrics.rank5 == 1.0
    # Non-mated top scores (own subject left out): 0.3, 0.8, 0.4. FPIR 1 % of 3 searches
    # allows none, so t lies just above 0.8: only the mated 0.9 passes; the mated search of
    # probe 1 is a miss at rank 1 (−inf). FNIR = 2/3.
    assert metrics.open_set.threshold == pytest.approx(0.8, abs=1e-6)
    assert metrics.open_set.fnir == pytest.approx(2 / 3)
    assert metrics.open_set.fpir == 0.0
    genuine = sorted(scores.genuine.tolist())
    assert genuine == pytest.approx([0.2, 0.2, 0.5, 0.6, 0.7, 0.9])
    assert len(scores.impostor) == 12


def test_the_vectorised_best_threshold_agrees_with_scoring_every_candidate() -> None:
    rng = np.random.default_rng(3)
    similarities = rng.normal(size=400).round(2)  # rounded: many ties
    same = rng.random(400) < 0.3
    chosen = best_threshold(similarities, same)
    values = np.unique(similarities)
    candidates = np.concatenate(
        [[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]]
    )
    accuracies = [np.mean((similarities >= t) == same) for t in candidates]
    assert chosen == candidates[int(np.argmax(accuracies))]


def test_at_threshold_counts_misses_and_false_alarms() -> None:
    outcome = at_threshold(ConditionScores(SIMILARITY, PROBES, GALLERY), 0.75)
    # Mated: 0.9 passes, probe 1 is not first (a miss), 0.7 < 0.75 (a miss) → FNIR 2/3.
    assert outcome.fnir == pytest.approx(2 / 3)
    # Non-mated tops 0.3, 0.8, 0.4: only 0.8 ≥ 0.75 → FPIR 1/3.
    assert outcome.fpir == pytest.approx(1 / 3)


def test_rank1_breakdown_puts_every_probe_in_one_bin_of_each_factor() -> None:
    chips = _chip_set({"ann": 3, "bob": 3, "cy": 3})
    split = split_gallery_probes(chips, per_identity=2)
    chips_array = np.full((len(split.probes), 150, 150, 3), 200, dtype=np.uint8)
    evaluation = EvaluationSet(chips, split, chips_array[:0], chips_array, chips_array)
    # Probe photos are number 2 of each identity: box width 80 px, frontal, bright.
    similarity = np.zeros((3, 6), dtype=np.float32)
    similarity[[0, 1, 2], [0, 0, 5]] = 1.0  # the second probe's best match is subject 0
    scores = ConditionScores(similarity, split.probe_labels, split.gallery_labels)
    bins = rank1_breakdown(evaluation, scores)
    for factor in ("resolution", "pose", "light"):
        assert sum(b.probes for b in bins if b.factor == factor) == 3
    by_label = {b.label: b for b in bins}
    assert by_label["50–90 px"].probes == 3
    assert by_label["50–90 px"].rank1 == pytest.approx(2 / 3)
    assert by_label["frontal (yaw < 0.12)"].probes == 3
    assert by_label["bright (luma ≥ 170)"].probes == 3


def test_metrics_json_names_every_figure_of_both_conditions(
    lfw_model_evaluation: ModelEvaluation,
) -> None:
    figures = lfw_model_evaluation.metrics_json()
    assert set(figures) == {"clean", "degraded"}
    expected = {"rank1", "rank5", "map_at_r", "fnir_at_fpir_1pct", "auc", "tar_at_far_1e-3"}
    assert expected <= set(figures["clean"])


def test_real_faces_are_recognised_and_degradation_costs_accuracy(
    lfw_model_evaluation: ModelEvaluation,
) -> None:
    clean, degraded = lfw_model_evaluation.clean_metrics, lfw_model_evaluation.degraded_metrics
    assert clean.probes == degraded.probes == 24  # 12 people, photos 4 and 5
    assert clean.rank1 >= 23 / 24
    assert clean.auc > degraded.auc
    assert degraded.rank1 <= clean.rank1


def test_each_model_is_measured_on_chips_cut_for_its_own_template(
    faces_dir: Path, tmp_path: Path, embedder: FaceEmbedder
) -> None:
    """dlib (150 px) and EdgeFace (112 px, ArcFace) side by side, on the same probes."""
    root = faces_dir / "lfw_mini"
    data = EvaluationData(root=root, identities=identities(root), description="lfw_mini")
    dlib, edgeface = evaluate_models(
        ["dlib-resnet", "edgeface-xxs"],
        data=data,
        detector=embedder.detector,
        cache_dir=tmp_path / "chips",
        models_dir=MODELS,
        device=torch.device("cpu"),
    )
    assert edgeface.name == "edgeface-xxs"
    for result in (dlib, edgeface):
        assert result.clean_metrics.probes == result.degraded_metrics.probes == 24
        assert result.clean_metrics.rank1 >= 23 / 24, result.name
