"""`lineup train` and `lineup evaluate`: fine-tuning and measurement from the command line.

Thin front doors over `app.training.train_run` and `app.training.evaluate_run`;
`app.cli` registers them. Heavy imports wait until a command runs.
"""

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.training.train_config import TrainConfig

if TYPE_CHECKING:
    from app.config import Settings
    from app.training.evaluate_run import PairsEvaluation
    from app.training.evaluation import ModelEvaluation
    from app.training.trainer import TrainProgress
    from app.training.verification import ImagePair, PairsResult
    from app.vision.detection import FaceDetector

DEFAULT = TrainConfig.default

Tree = Annotated[
    Path,
    typer.Argument(
        help="One sub-folder per identity, e.g. ../shared/faces/celeba",
        exists=True,
        file_okay=False,
    ),
]
Split = Annotated[
    Path | None, typer.Option(help="Identity split JSON (e.g. celeba_split.json); default: all")
]


def _identities(tree: Path, split: Path | None, part: str) -> list[str]:
    from app.training.face_tree import chosen_identities

    return chosen_identities(tree, split, part)


def _describe(tree: Path, split: Path | None, part: str) -> str:
    """How cards and reports name the photos used."""
    return (
        f"{tree.name} {part} identities ({split.name})" if split else f"{tree.name}, every identity"
    )


def _cache_dir(settings: "Settings", tree: Path) -> Path:
    from app.training.chips import tree_cache_dir

    return tree_cache_dir(settings.data_dir / "training" / "chip-cache", tree)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
    )


def train(
    tree: Tree,
    name: Annotated[str, typer.Option(help="The new model's folder under LINEUP_MODELS_DIR")],
    split: Split = None,
    part: Annotated[str, typer.Option(help="Which identities of the split")] = "train",
    loss: Annotated[str, typer.Option(help="triplet or contrastive")] = DEFAULT("loss"),
    miner: Annotated[
        str | None, typer.Option(help="triplet: semihard (default), hard, all, batch-hard")
    ] = None,
    margin: Annotated[float, typer.Option(help="Triplet margin (unit-sphere distance)")] = DEFAULT(
        "margin"
    ),
    pos_margin: Annotated[
        float, typer.Option(help="Contrastive: pull a person's photos closer than this")
    ] = DEFAULT("pos_margin"),
    neg_margin: Annotated[
        float, typer.Option(help="Contrastive: push other people farther than this")
    ] = DEFAULT("neg_margin"),
    epochs: Annotated[int, typer.Option(min=1)] = DEFAULT("epochs"),
    m_per_class: Annotated[
        int, typer.Option(min=2, help="Photos per identity in a batch")
    ] = DEFAULT("m_per_class"),
    classes_per_batch: Annotated[int, typer.Option(min=2)] = DEFAULT("classes_per_batch"),
    batches_per_epoch: Annotated[
        int | None, typer.Option(min=1, help="Default: as many as the photos fill")
    ] = None,
    lr: Annotated[float, typer.Option(help="Learning rate of a projection head")] = DEFAULT("lr"),
    pretrained_lr_factor: Annotated[
        float, typer.Option(help="Pretrained tensors: lr × this × their RMS")
    ] = DEFAULT("pretrained_lr_factor"),
    freeze_depth: Annotated[int, typer.Option(help="Frozen blocks: 3 = stem + 2 stages")] = DEFAULT(
        "freeze_depth"
    ),
    head_dim: Annotated[int | None, typer.Option(help="Add a projection head of this size")] = None,
    augment: Annotated[bool, typer.Option(help="Flips, colour jitter, CCTV damage")] = DEFAULT(
        "augment"
    ),
    views: Annotated[
        str, typer.Option(help="single: one augmented view; paired: clean + CCTV twin")
    ] = DEFAULT("views"),
    reference: Annotated[
        str, typer.Option(help="batch: mine in the batch; pretrained: against dlib's clean views")
    ] = DEFAULT("reference"),
    distillation: Annotated[
        float, typer.Option(min=0.0, help="Weight of pulling each view onto dlib's clean embedding")
    ] = DEFAULT("distillation"),
    composites: Annotated[
        float,
        typer.Option(min=0.0, max=0.99, help="Fraction of photos mixed with someone else's"),
    ] = DEFAULT("composites"),
    seed: Annotated[int, typer.Option()] = DEFAULT("seed"),
    calibration_identities: Annotated[
        int, typer.Option(help="Identities held out of training to calibrate the threshold")
    ] = 40,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint")] = True,
) -> None:
    """Fine-tune dlib's ResNet with a metric loss on TREE; writes models/NAME/."""
    from app.composition import build_detector
    from app.config import get_settings
    from app.training.train_config import TrainConfig
    from app.training.train_run import train_model

    settings = get_settings()
    try:
        config = TrainConfig(
            checkpoint_dir=settings.models_dir / name,
            loss=loss,
            miner=miner,
            margin=margin,
            pos_margin=pos_margin,
            neg_margin=neg_margin,
            epochs=epochs,
            m_per_class=m_per_class,
            classes_per_batch=classes_per_batch,
            batches_per_epoch=batches_per_epoch,
            lr=lr,
            pretrained_lr_factor=pretrained_lr_factor,
            freeze_depth=freeze_depth,
            head_dim=head_dim,
            augment=augment,
            views=views,
            reference=reference,
            distillation=distillation,
            composites=composites,
            seed=seed,
            device=settings.device,
        )
    except ValueError as error:  # settings that cannot go together, said before any work
        raise typer.BadParameter(str(error)) from None
    with _progress() as bar:
        chips = bar.add_task("faces", total=None, note="")
        batches = bar.add_task("training", total=None, note="", visible=False)

        def on_batch(report: "TrainProgress") -> None:
            done = (report.epoch - 1) * report.batches + report.batch
            note = f"epoch {report.epoch}/{report.epochs}, loss {report.batch_loss:.4f}"
            bar.update(batches, completed=done, total=report.epochs * report.batches, note=note)
            bar.update(batches, visible=True)

        run = train_model(
            config,
            root=tree,
            identities=_identities(tree, split, part),
            detector=build_detector(settings),
            cache_dir=_cache_dir(settings, tree),
            calibration_identities=calibration_identities,
            data_description=_describe(tree, split, part),
            chip_progress=lambda done, total: bar.update(chips, completed=done, total=total),
            progress=on_batch,
            resume=resume,
        )
    losses = ", ".join(f"{value:.4f}" for value in run.result.epoch_losses)
    typer.echo(
        f"trained {len(run.result.epoch_losses)} epochs in {run.seconds:.0f} s; losses {losses}"
    )
    if run.calibration is not None:
        typer.echo(f"calibrated threshold: {json.dumps(run.calibration)}")
    typer.echo(f"model folder: {config.checkpoint_dir}")


OFFLINE_BACKBONES = ("dlib-resnet", "edgeface-xs", "edgeface-xxs")
"""The built-in backbones whose weights every checkout holds: what `evaluate` compares."""

OptionalTree = Annotated[
    Path | None,
    typer.Argument(
        help="One sub-folder per identity, e.g. ../shared/faces/celeba; optional with --pairs",
        metavar="TREE",
        exists=True,
        file_okay=False,
        show_default=False,
    ),
]


def evaluate(
    tree: OptionalTree = None,
    split: Split = None,
    part: Annotated[str, typer.Option(help="Identities to evaluate on (never trained on)")] = "val",
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="Models to measure, baseline first; default: dlib-resnet and every fine-tuned one"
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write an HTML report into this folder")
    ] = None,
    train_part: Annotated[
        str | None, typer.Option(help="Split part for the embedding-size experiment (report only)")
    ] = "train",
    pairs: Annotated[
        Path | None,
        typer.Option(
            help="Score a pairs file in LFW's format with its k-fold protocol (TREE optional)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the pairs' photos, NAME/NAME_0001.jpg; default: the pairs file's",
            file_okay=False,
        ),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure to this JSON file")
    ] = None,
    write_card: Annotated[
        bool,
        typer.Option(
            "--write-card", help="Record TREE's figures in each model's card (models/*/card.json)"
        ),
    ] = False,
) -> None:
    """Measure models on identities they never saw: rank-k, MAP@R, FNIR, ROC; clean and CCTV.

    With --pairs, also (or, without TREE, only) verification on a pairs file.
    Model cards are only read, unless --write-card.
    """
    _check_evaluate_options(
        tree, split=split, report=report, pairs=pairs, images=images, write_card=write_card
    )
    from app.composition import build_detector
    from app.config import get_settings
    from app.vision.backbones.finetuned import finetuned_models

    settings = get_settings()
    names = model or [*OFFLINE_BACKBONES, *finetuned_models(settings.models_dir)]
    # The pairs are read and their photos checked before any work, so a wrong folder fails fast.
    pair_list = _read_pairs(pairs, images=images or pairs.parent) if pairs else None
    detector = build_detector(settings)
    figures: dict[str, Any] = {}
    if tree is not None:
        figures["tree"] = _evaluate_tree(
            settings,
            detector,
            names,
            tree=tree,
            split=split,
            part=part,
            train_part=train_part,
            report=report,
            write_card=write_card,
        )
    if pairs is not None and pair_list is not None:
        figures["pairs"] = _evaluate_pairs(
            settings,
            detector,
            names,
            pairs=pairs,
            images=images or pairs.parent,
            pair_list=pair_list,
        )
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
        Console(stderr=True).print(f"figures: {json_path}")


def _check_evaluate_options(
    tree: Path | None,
    *,
    split: Path | None,
    report: Path | None,
    pairs: Path | None,
    images: Path | None,
    write_card: bool,
) -> None:
    """Refuse, before any work, options that measure nothing or have nothing to act on."""
    if tree is None and pairs is None:
        raise typer.BadParameter(
            "nothing to measure: give a TREE, --pairs FILE, or both", param_hint="TREE"
        )
    if tree is None:
        given = [flag for flag, value in (("--split", split), ("--report", report)) if value]
        given += ["--write-card"] if write_card else []
        if given:
            raise typer.BadParameter(
                "they describe a TREE evaluation; give a TREE", param_hint=", ".join(given)
            )
    if images is not None and pairs is None:
        raise typer.BadParameter("it says where the --pairs photos are", param_hint="--images")


def _read_pairs(pairs: Path, *, images: Path) -> list["ImagePair"]:
    """The pairs of `pairs`, every photo found under `images`; a usage error (exit 2) if not."""
    from app.training.verification import check_photos, read_pairs

    try:
        pair_list = read_pairs(pairs, images=images)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--pairs") from None
    try:
        check_photos(pair_list, images=images)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--images") from None
    return pair_list


def _evaluate_tree(
    settings: "Settings",
    detector: "FaceDetector",
    names: list[str],
    *,
    tree: Path,
    split: Path | None,
    part: str,
    train_part: str | None,
    report: Path | None,
    write_card: bool,
) -> dict[str, Any]:
    """Measure `names` on TREE, print the table; the figures, as JSON."""
    from app.training.evaluate_run import EvaluationData, evaluate_models
    from app.vision.device import resolve_device

    described = _describe(tree, split, part)
    data = EvaluationData(
        root=tree,
        identities=_identities(tree, split, part),
        description=described,
        train_identities=_identities(tree, split, train_part) if split and train_part else None,
    )
    console = Console(stderr=True)
    started = time.perf_counter()
    results = evaluate_models(
        names,
        data=data,
        detector=detector,
        cache_dir=_cache_dir(settings, tree),
        models_dir=settings.models_dir,
        device=resolve_device(settings.device),
        report_dir=report,
        write_card=write_card,
        step=lambda message: console.print(f"[dim]{message}[/]"),
    )
    Console().print(_results_table(results))
    cards = "figures recorded in the model cards" if write_card else "model cards left as they are"
    console.print(f"done in {time.perf_counter() - started:.0f} s; {cards}")
    if report is not None:
        console.print(f"report: {report / 'index.html'}")
    return {"data": described, "models": {r.name: r.metrics_json() for r in results}}


def _evaluate_pairs(
    settings: "Settings",
    detector: "FaceDetector",
    names: list[str],
    *,
    pairs: Path,
    images: Path,
    pair_list: list["ImagePair"],
) -> dict[str, Any]:
    """Score `pair_list` with each model, print the table and the notes; the figures, as JSON."""
    from app.training.evaluate_run import evaluate_pairs
    from app.training.verification import UNSCORED_RULE, PairsNotScorable
    from app.vision.device import resolve_device

    console = Console(stderr=True)
    console.print(f"[dim]scoring {len(pair_list)} pairs of {pairs}; photos under {images}[/]")
    try:
        scored = evaluate_pairs(
            names,
            pairs=pair_list,
            images=images,
            detector=detector,
            cache_dir=_cache_dir(settings, images),
            models_dir=settings.models_dir,
            device=resolve_device(settings.device),
        )
    except PairsNotScorable as error:
        raise typer.BadParameter(str(error), param_hint="--images") from None
    Console().print(_pairs_table(scored.results, title=str(pairs)))
    for line in _pairs_notes(scored):
        console.print(line)
    return {
        "file": str(pairs),
        "images": str(images),
        "photos": scored.photos,
        "photos_without_usable_face": dict(scored.skipped),
        "unscored_rule": UNSCORED_RULE,
        "models": {name: result.to_json() for name, result in scored.results.items()},
    }


def _pairs_table(results: dict[str, "PairsResult"], *, title: str) -> Table:
    table = Table(
        "model",
        "pairs",
        "unscored",
        "accuracy (k-fold)",
        "fold thresholds",
        "TAR@FAR 1e-3",
        "AUC",
        "own threshold: accuracy",
        title=title,
    )
    for name, result in results.items():
        accuracy = (
            f"{100 * result.accuracy:.2f} ± {100 * result.accuracy_std:.2f} % "
            f"over {len(result.folds)} folds"
        )
        own = (
            "none in its card"
            if result.calibrated_threshold is None or result.calibrated_accuracy is None
            else f"{result.calibrated_threshold:.3f}: {100 * result.calibrated_accuracy:.2f} %"
        )
        table.add_row(
            name,
            str(result.pairs),
            str(result.unscored),
            accuracy,
            ", ".join(f"{fold.threshold:.3f}" for fold in result.folds),
            f"{100 * result.tar_at_far_1e3:.1f} %",
            f"{result.auc:.4f}",
            own,
        )
    return table


def _pairs_notes(scored: "PairsEvaluation") -> list[str]:
    """How to read the pairs table: unscored pairs, and what TAR at FAR 1e-3 means here."""
    first = next(iter(scored.results.values()))
    if first.unscored:
        skipped = ", ".join(f"{count} {why}" for why, count in sorted(scored.skipped.items()))
        notes = [
            f"{first.unscored} of {first.pairs} pairs unscored ({skipped} of {scored.photos} "
            "photos); counted as different-person answers at every threshold: wrong for "
            "same-person pairs, right for different-person pairs, in accuracy, TAR and AUC"
        ]
    else:
        notes = [f"every pair scored: all {scored.photos} photos had a face"]
    if first.impostor_pairs < 1000:
        notes.append(
            f"TAR@FAR 1e-3 on {first.impostor_pairs} different-person pairs allows no false "
            "accept: it is the share of same-person pairs above every different-person one"
        )
    return notes


def _results_table(results: list["ModelEvaluation"]) -> Table:
    table = Table(
        "model",
        "probes",
        "rank-1",
        "rank-5",
        "MAP@R",
        "FNIR@FPIR 1%",
        "TAR@FAR 1e-3",
        "AUC",
        title="identities never seen in training",
    )
    for result in results:
        for condition, metrics in (
            ("clean", result.clean_metrics),
            ("degraded", result.degraded_metrics),
        ):
            table.add_row(
                f"{result.name} ({condition})",
                str(metrics.probes),
                f"{100 * metrics.rank1:.1f} %",
                f"{100 * metrics.rank5:.1f} %",
                f"{metrics.map_at_r:.3f}",
                f"{100 * metrics.open_set.fnir:.1f} %",
                f"{100 * metrics.tar_at_far_1e3:.1f} %",
                f"{metrics.auc:.4f}",
            )
    return table
