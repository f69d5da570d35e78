"""`lineup evaluate`: measure models on identities they never saw, record it, draw the report.

Every model is measured on the same photos, split the same way into gallery
and probes, with the same seeded damage on its degraded probes, each cut for
its own backbone's template (one `EvaluationSet` per template), so the figures
of two models differ by the model alone. The figures go into each model's card, keyed to
its weights, only when asked (cards are committed files), and optionally into
an HTML report. A pairs file in LFW's format is scored on its own.
"""

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from app.gallery.calibration import calibrated_threshold
from app.training.chips import ChipCache
from app.training.embedding_size import embedding_size_experiment
from app.training.evaluation import (
    Embed,
    EvaluationSet,
    ModelEvaluation,
    build_evaluation_set,
    evaluate_model,
)
from app.training.face_tree import LabelledPhoto, labelled_photos
from app.training.model_card import read_card, record_metrics
from app.training.report import ReportInputs, write_report
from app.training.verification import (
    ImagePair,
    PairsNotScorable,
    PairsResult,
    pair_photos,
    score_pairs,
)
from app.vision.alignment_template import AlignmentTemplate
from app.vision.backbones.base import Backbone
from app.vision.backbones.registry import create_backbone
from app.vision.detection import FaceDetector
from app.vision.embedder import embed_in_batches

log = logging.getLogger(__name__)

EMBED_BATCH = 64
Step = Callable[[str], None]


@dataclass(frozen=True)
class EvaluationData:
    """Where the photos are: the tree, its evaluation identities, and (for the size
    experiment) training identities; `description` names them in cards and the report."""

    root: Path
    identities: list[str]
    description: str
    train_identities: list[str] | None = None


def batched_embed(backbone: Backbone) -> Embed:
    """The `Embed` function of `backbone`: any number of chips, `EMBED_BATCH` at a time."""
    return partial(embed_in_batches, backbone, batch_size=EMBED_BATCH)


def evaluate_models(
    names: Sequence[str],
    *,
    data: EvaluationData,
    detector: FaceDetector,
    cache_dir: Path,
    models_dir: Path,
    device: torch.device,
    report_dir: Path | None = None,
    write_card: bool = False,
    step: Step | None = None,
) -> list[ModelEvaluation]:
    """Measure each model in `names` (the baseline first), write the report if asked.

    With `write_card`, each model's figures replace the `metrics` of its card
    (a fine-tuned model's with the baseline's beside them); otherwise no card
    is written.
    """
    say = step or (lambda message: log.info(message))
    sets = _EvaluationSets(data, detector=detector, cache_dir=cache_dir, say=say)
    results: list[ModelEvaluation] = []
    backbones: dict[str, Backbone] = {}
    thresholds: dict[str, float] = {}
    for name in names:
        backbone = create_backbone(name, device=device, models_dir=models_dir)
        evaluation = sets.for_template(backbone.template)
        say(f"measuring {name}")
        result = evaluate_model(name, batched_embed(backbone), evaluation)
        if write_card:
            baseline = {"model": names[0], **results[0].metrics_json()} if results else None
            figures = {"data": data.description, **result.metrics_json()}
            record_metrics(models_dir, backbone, figures, baseline=baseline)
        results.append(result)
        backbones[name] = backbone
        thresholds[name] = _threshold(models_dir, backbone, result)
    if report_dir is not None:
        say(f"writing the report to {report_dir}")
        first = backbones[names[0]]
        inputs = ReportInputs(
            evaluation=sets.for_template(first.template),
            models=results,
            cards={name: read_card(models_dir, name) for name in names},
            thresholds=thresholds,
            data_description=data.description,
        )
        cache = sets.cache(first.template)
        _add_size_experiment(inputs, data=data, cache=cache, backbone=first, say=say)
        write_report(report_dir, inputs)
    return results


class _EvaluationSets:
    """The evaluation identities' chips and probes, cut for each template when first asked."""

    def __init__(
        self, data: EvaluationData, *, detector: FaceDetector, cache_dir: Path, say: Step
    ) -> None:
        self._data, self._detector, self._cache_dir, self._say = data, detector, cache_dir, say
        self._sets: dict[str, EvaluationSet] = {}

    def cache(self, template: AlignmentTemplate) -> ChipCache:
        return ChipCache(
            root=self._data.root,
            cache_dir=self._cache_dir,
            detector=self._detector,
            template=template,
        )

    def for_template(self, template: AlignmentTemplate) -> EvaluationSet:
        if template.name not in self._sets:
            self._say(
                f"finding and aligning the faces of {len(self._data.identities)} evaluation "
                f"identities for {template.name}"
            )
            photos = labelled_photos(self._data.root, self._data.identities)
            made = build_evaluation_set(self.cache(template).build(photos), template=template)
            self._check_same_probes(made)
            self._sets[template.name] = made
        return self._sets[template.name]

    def _check_same_probes(self, made: EvaluationSet) -> None:
        """Every template's set must hold the same photos in the same roles."""
        for other in self._sets.values():
            if _photos(other, other.split.probes.tolist()) != _photos(
                made, made.split.probes.tolist()
            ):
                raise RuntimeError("the evaluation photos differ between alignment templates")


def _photos(evaluation: EvaluationSet, indices: Sequence[int]) -> list[Path]:
    return [evaluation.chips.photo_path(int(index)) for index in indices]


def _threshold(models_dir: Path, backbone: Backbone, result: ModelEvaluation) -> float:
    """The card's calibrated threshold; without one, the clean FPIR 1 % point (and a warning)."""
    found = calibrated_threshold(models_dir, backbone=backbone.name, weights_hash=backbone.version)
    if found is not None:
        return found
    log.warning(
        "%s has no calibrated threshold; the report marks its FPIR 1 %% point", backbone.name
    )
    return result.clean_metrics.open_set.threshold


def _add_size_experiment(
    inputs: ReportInputs,
    *,
    data: EvaluationData,
    cache: ChipCache,
    backbone: Backbone,
    say: Step,
) -> None:
    """Train heads of each size on the training identities' features of `backbone`."""
    if not data.train_identities:
        return
    say(f"embedding-size experiment on {backbone.name}'s descriptors")
    chips = cache.build(labelled_photos(data.root, data.train_identities))
    features = batched_embed(backbone)(chips.stack())
    base = next(model for model in inputs.models if model.name == backbone.name)
    inputs.size_results = embedding_size_experiment(
        features, chips.labels(), base, inputs.evaluation
    )
    inputs.size_base = backbone.name


@dataclass
class PairsEvaluation:
    """A pairs file scored by each model: the photos read, those without a usable face
    (by reason), and each model's `PairsResult`."""

    photos: int
    skipped: Counter[str]
    results: dict[str, PairsResult] = field(default_factory=dict)


def evaluate_pairs(
    names: Sequence[str],
    *,
    pairs: list[ImagePair],
    images: Path,
    detector: FaceDetector,
    cache_dir: Path,
    models_dir: Path,
    device: torch.device,
) -> PairsEvaluation:
    """Each model's k-fold figures on `pairs` (`read_pairs`), whose photos lie under `images`.

    Each model is also scored at its own calibrated threshold when its card has
    one for its weights. Raises `PairsNotScorable` when no photo has a face.
    """
    photos = pair_photos(pairs)
    scored = PairsEvaluation(photos=len(photos), skipped=Counter())
    for name in names:
        backbone = create_backbone(name, device=device, models_dir=models_dir)
        cache = ChipCache(
            root=images, cache_dir=cache_dir, detector=detector, template=backbone.template
        )
        chips = cache.build(LabelledPhoto(photo.parent.name, photo) for photo in photos)
        if not len(chips):
            raise PairsNotScorable(
                f"no face found in any of the {len(photos)} photos under {images}"
            )
        scored.skipped = chips.skipped  # detection, so the same for every template
        paths = [chips.photo_path(index) for index in range(len(chips))]
        embeddings = batched_embed(backbone)(chips.stack())
        scored.results[name] = score_pairs(
            pairs,
            dict(zip(paths, embeddings, strict=True)),
            calibrated_threshold=calibrated_threshold(
                models_dir, backbone=backbone.name, weights_hash=backbone.version
            ),
        )
    return scored
