"""The report's pictures, each a PNG file: ROC curves, score histograms, embedding maps, grids.

matplotlib runs headless (the Agg canvas); every function draws one figure,
saves it and closes it, so a report of many figures holds no memory.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import NDArray
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from app.training.evaluation import ConditionScores, ModelEvaluation

DPI = 110
GRID_DPI = 72  # photo grids: enough to judge a face, a fraction of the bytes
MAP_IDENTITIES = 20  # more colours than this are not told apart


def _save(figure: Figure, path: Path, *, dpi: int = DPI) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def roc_curves(models: Sequence[ModelEvaluation], path: Path) -> Path:
    """TAR against FAR (log scale) for every model, clean and degraded probes side by side."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for axis, condition in zip(axes, ("clean", "degraded"), strict=True):
        for model in models:
            curve = model.roc(condition)
            axis.plot(
                np.maximum(curve.false_accept_rates, 1e-6),
                curve.true_accept_rates,
                label=f"{model.name} (AUC {curve.auc:.4f})",
            )
        for far in (1e-3, 1e-2):
            axis.axvline(far, color="grey", linewidth=0.6, linestyle=":")
        axis.set(xscale="log", xlim=(1e-5, 1), ylim=(0, 1.01), xlabel="false accept rate")
        axis.set_title(f"{condition} probes against the clean gallery")
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("true accept rate")
    return _save(figure, path)


def score_histograms(model: ModelEvaluation, path: Path, *, threshold: float) -> Path:
    """Genuine and impostor similarity histograms of both conditions, the threshold marked."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for axis, (condition, scores) in zip(
        axes, (("clean", model.clean), ("degraded", model.degraded)), strict=True
    ):
        _histogram(axis, scores, threshold=threshold)
        axis.set_title(f"{model.name}: {condition} probes")
    axes[0].set_ylabel("density")
    return _save(figure, path)


def _histogram(axis: Axes, scores: ConditionScores, *, threshold: float) -> None:
    # From just below the lowest score: face similarities crowd the top of [-1, 1].
    low = float(min(scores.impostor.min(), scores.genuine.min()))
    bins = np.linspace(np.floor(low * 20) / 20, 1.0, 121).tolist()
    axis.hist(scores.impostor, bins=bins, density=True, alpha=0.6, label="impostor (different)")
    axis.hist(scores.genuine, bins=bins, density=True, alpha=0.6, label="genuine (same person)")
    axis.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    axis.set_xlabel("cosine similarity")
    axis.legend(fontsize=8, loc="upper left")


def embedding_maps(
    embeddings: NDArray[np.float32], labels: NDArray[np.int64], path: Path, *, title: str
) -> Path:
    """PCA and t-SNE maps of the embeddings of the first `MAP_IDENTITIES` identities."""
    chosen = np.isin(labels, np.unique(labels)[:MAP_IDENTITIES])
    points, colours = embeddings[chosen], labels[chosen]
    pca = PCA(n_components=2, random_state=0).fit_transform(points)
    perplexity = min(30.0, max(5.0, (len(points) - 1) / 4))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0)
    maps = (("PCA", pca), ("t-SNE", tsne.fit_transform(points)))
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for axis, (method, xy) in zip(axes, maps, strict=True):
        axis.scatter(xy[:, 0], xy[:, 1], c=colours, cmap="tab20", s=14)
        axis.set_title(f"{title}: {method}")
        axis.set_xticks([])
        axis.set_yticks([])
    return _save(figure, path)


@dataclass(frozen=True)
class GridRow:
    """One probe and its top candidates: chips, captions, and which candidate is right."""

    probe: NDArray[np.uint8]
    caption: str
    candidates: list[tuple[NDArray[np.uint8], str, bool]]


def probe_grid(rows: Sequence[GridRow], path: Path, *, title: str) -> Path:
    """Each row: the probe chip, then its top-k gallery chips (green frame: the right person)."""
    columns = 1 + max(len(row.candidates) for row in rows)
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(1.6 * columns, 1.9 * len(rows)), squeeze=False
    )
    for axis_row, row in zip(axes, rows, strict=True):
        _chip(axis_row[0], row.probe, row.caption, colour="#1f3b73")
        for axis, (chip, caption, correct) in zip(axis_row[1:], row.candidates, strict=False):
            _chip(axis, chip, caption, colour="#1a7f37" if correct else "#b42318")
        for axis in axis_row[1 + len(row.candidates) :]:
            axis.axis("off")
    figure.suptitle(title)
    return _save(figure, path, dpi=GRID_DPI)


def _chip(axis: Axes, chip: NDArray[np.uint8], caption: str, *, colour: str) -> None:
    axis.imshow(chip, cmap="gray" if chip.ndim == 2 else None)
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)
    axis.set_xlabel(caption, fontsize=7)


def embedding_size_plot(
    sizes: Sequence[int], series: Mapping[str, Sequence[float]], path: Path
) -> Path:
    """One line per measured figure (rank-1 clean, degraded, ...) against the embedding size."""
    figure, axis = plt.subplots(figsize=(6, 3.8))
    for label, values in series.items():
        axis.plot(sizes, values, marker="o", label=label)
    axis.set(xscale="log", xlabel="embedding dimension", ylabel="fraction", ylim=(0, 1.01))
    axis.set_xticks(list(sizes), [str(size) for size in sizes])
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)
