"""`lineup evaluate --report DIR`: one HTML page and its PNG plots, from measured results.

Everything on the page is computed from the evaluation it is given, the
limitations included: each failure mode quotes the figure that shows it.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from app.training import plots
from app.training.breakdown import Bin, ThresholdOutcome, at_threshold, rank1_breakdown
from app.training.embedding_size import SizeResult
from app.training.evaluation import EvaluationSet, ModelEvaluation
from app.training.grids import grid_rows

REPORT_PAGE = "index.html"


@dataclass
class ReportInputs:
    """What the page shows: models in order (the baseline first), their cards and thresholds."""

    evaluation: EvaluationSet
    models: list[ModelEvaluation]
    cards: dict[str, dict[str, Any]]
    thresholds: dict[str, float]
    data_description: str
    size_results: list[SizeResult] = field(default_factory=list)
    size_base: str = ""


def write_report(directory: Path, inputs: ReportInputs) -> Path:
    """Write `directory/index.html` with its plots beside it; the page's path."""
    directory.mkdir(parents=True, exist_ok=True)
    context = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "data": inputs.data_description,
        "split": inputs.evaluation.split,
        "identities": len(inputs.evaluation.chips.identities()),
        "models": [_model_section(directory, inputs, model) for model in inputs.models],
        "roc_png": plots.roc_curves(inputs.models, directory / "roc.png").name,
        "sizes": _size_section(directory, inputs),
        "limitations": _limitations(inputs),
    }
    page = directory / REPORT_PAGE
    page.write_text(_environment().get_template("report.html").render(**context))
    return page


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("app.training", "templates"), autoescape=select_autoescape()
    )


def _model_section(directory: Path, inputs: ReportInputs, model: ModelEvaluation) -> dict[str, Any]:
    slug = model.name.replace("/", "_")
    threshold = inputs.thresholds[model.name]
    evaluation = inputs.evaluation
    grids = {}
    for condition, scores, chips in (
        ("clean", model.clean, evaluation.probe_chips),
        ("degraded", model.degraded, evaluation.degraded_probe_chips),
    ):
        rows = grid_rows(evaluation, scores, chips)
        title = f"{model.name}, {condition} probes: failures first, then successes"
        grids[condition] = plots.probe_grid(
            rows, directory / f"{slug}-{condition}-top5.png", title=title
        ).name
    labels = evaluation.split.probe_labels
    return {
        "name": model.name,
        "metrics": model.metrics_json(),
        "threshold": threshold,
        "card": json.dumps(inputs.cards.get(model.name, {}), indent=2),
        "histogram_png": plots.score_histograms(
            model, directory / f"{slug}-scores.png", threshold=threshold
        ).name,
        "map_png": plots.embedding_maps(
            model.probe_embeddings, labels, directory / f"{slug}-map.png", title=model.name
        ).name,
        "grids": grids,
    }


def _size_section(directory: Path, inputs: ReportInputs) -> dict[str, Any] | None:
    results = inputs.size_results
    if not results:
        return None
    sizes = [result.dim for result in results]
    series = {
        "rank-1, clean probes": [r.clean.rank1 for r in results],
        "rank-1, degraded probes": [r.degraded.rank1 for r in results],
        "TAR at FAR 1e-3, clean": [r.clean.tar_at_far_1e3 for r in results],
        "TAR at FAR 1e-3, degraded": [r.degraded.tar_at_far_1e3 for r in results],
    }
    png = plots.embedding_size_plot(sizes, series, directory / "embedding-size.png").name
    return {"base": inputs.size_base, "results": results, "png": png}


@dataclass(frozen=True)
class Limitations:
    """The measured figures the limitations section quotes, for the last (newest) model."""

    model: str
    clean: dict[str, float | int]
    degraded: dict[str, float | int]
    bins: list[Bin]
    threshold_clean: ThresholdOutcome
    threshold_degraded: ThresholdOutcome


def _limitations(inputs: ReportInputs) -> Limitations:
    model = inputs.models[-1]
    threshold = inputs.thresholds[model.name]
    metrics = model.metrics_json()
    return Limitations(
        model=model.name,
        clean=metrics["clean"],
        degraded=metrics["degraded"],
        bins=rank1_breakdown(inputs.evaluation, model.clean),
        threshold_clean=at_threshold(model.clean, threshold),
        threshold_degraded=at_threshold(model.degraded, threshold),
    )
