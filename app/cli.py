"""`lineup`: the command line. A thin front door over `app.gallery` and `app.training`.

Heavy modules (torch, the gallery) are imported inside the commands that need
them, so `lineup --help` and `lineup db upgrade` start at once.
"""

import json
import logging
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import MofNCompleteColumn, Progress, ProgressColumn, Task, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from app import cli_access, cli_training
from app.schemas import ProbeFace, ProbeResult

if TYPE_CHECKING:
    from pydantic import ValidationError

    from app.composition import Lineup
    from app.config import Settings
    from app.gallery.bulk_enroll import EnrollmentTally, SubjectFolder
    from app.gallery.model_catalog import ModelEntry
    from app.gallery.service import Gallery

# The API says the same on every probe: a ranked list invites over-reading.
LEADS_NOT_IDENTIFICATION = (
    "Candidates are investigative leads for a person to review, never an identification."
)
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports after Ctrl-C
REFUSALS_LISTED = 20
WORKER_HEALTHCHECK_S = 120

app = typer.Typer(help="Lineup: face search over a gallery of known people.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _logging(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Start-up chatter of libraries (migration plugins, FAISS's CPU probing) is not news.
    for noisy in ("alembic", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: LINEUP_HOST.")] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Default: LINEUP_PORT. 0: a free port, as logged."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Service processes on the one port. Each loads the model and follows the "
            "gallery's change log, so all of them answer from the same gallery.",
        ),
    ] = 1,
) -> None:
    """Run the HTTP service (API, OpenAPI page at /docs).

    On a gallery with no API keys yet, it first creates the admin key and prints it once.
    """
    import os

    import uvicorn
    from pydantic import ValidationError

    from app.cli_access import print_first_admin_key
    from app.config import get_settings

    if host is not None:
        # Each worker builds its settings from the environment, and so does the app of a
        # single process once the cache is cleared: all must see the address it listens
        # on, and the settings refuse LINEUP_AUTH=off on any but a loopback address.
        os.environ["LINEUP_HOST"] = host
        get_settings.cache_clear()
    try:
        settings = get_settings()
    except ValidationError as error:
        _fail(_settings_refusal(error), code=EXIT_BAD_INPUT)
    port = settings.port if port is None else port
    if settings.auth == "on":
        print_first_admin_key(host=settings.host, port=port)
    uvicorn.run(
        # An import string, so that each worker process builds its own app from the settings.
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=port,
        workers=workers,
        # A worker answers the supervisor's pings from a thread that importing torch and
        # loading the model can starve for seconds on a busy machine; uvicorn's 5 s
        # would kill and restart every worker before it ever came up.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )


def _settings_refusal(error: "ValidationError") -> str:
    """The settings' complaints in one line, as their validators worded them."""
    problems = []
    for problem in error.errors():
        where = ".".join(map(str, problem["loc"]))
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the configured database."""
    from app.config import get_settings
    from app.db.migrate import current_revision, upgrade_database

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.resolved_database_url)
    typer.echo(f"database at revision {current_revision(settings.resolved_database_url)}")


@app.command()
def calibrate(
    tree: Annotated[Path, typer.Argument(help="Folder per identity, e.g. ../shared/faces/celeba")],
    split: Annotated[Path, typer.Option(help="Identity split JSON")],
    part: Annotated[str, typer.Option(help="Which identities of the split")] = "train",
    fmr: Annotated[float, typer.Option(help="Target false-match rate")] = 1e-3,
    per_identity: Annotated[
        int | None, typer.Option(help="Use only the first N photos of each identity")
    ] = None,
    write_card: Annotated[
        bool, typer.Option(help="Record it in models/<backbone>/card.json")
    ] = False,
) -> None:
    """Choose the match threshold at a target false-match rate on labelled photos."""
    from rich.progress import Progress

    from app.composition import build_embedder
    from app.config import get_settings
    from app.training.calibration import calibrate as run_calibration
    from app.training.embed_tree import embed_tree
    from app.training.face_tree import labelled_photos, read_split
    from app.training.model_card import record_calibration

    settings = get_settings()
    embedder = build_embedder(settings)
    chosen = read_split(split, part)
    with Progress() as bar:
        task = bar.add_task("embedding", total=None)
        found = embed_tree(
            embedder,
            labelled_photos(tree, chosen, per_identity=per_identity),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    summary = run_calibration(found.embeddings, found.labels(), fmr=fmr).summary(
        fmr=fmr,
        identities=found.identities,
        skipped=found.skipped,
        data=f"{tree.name} {part} identities ({split.name})"
        + (f", first {per_identity} photos of each" if per_identity else ""),
    )
    typer.echo(json.dumps(summary, indent=2))
    if write_card:
        path = record_calibration(settings.models_dir, embedder.backbone, summary)
        typer.echo(f"recorded in {path}")


class FaceChoice(StrEnum):
    single = "single"
    largest = "largest"


@app.command()
def enroll(
    tree: Annotated[
        Path,
        typer.Argument(
            help="One sub-folder per subject, named by its external id "
            "(Tom_Hanks → display name 'Tom Hanks'). Files directly in TREE are ignored.",
            exists=True,
            file_okay=False,
        ),
    ],
    face: Annotated[
        FaceChoice,
        typer.Option(
            help="single: refuse a photo with several usable faces; largest: take the largest."
        ),
    ] = FaceChoice.single,
    create: Annotated[
        bool, typer.Option("--create/--no-create", help="Create subjects not yet in the gallery.")
    ] = True,
) -> None:
    """Enroll a folder of photos per subject.

    Safe to re-run: a photo already enrolled for its subject counts as a
    duplicate without running the model, so an interrupted run (Ctrl-C saves
    the index and exits 130) resumes where it stopped.
    """
    called = time.perf_counter()
    from app.config import get_settings
    from app.gallery.bulk_enroll import BadTree, EnrollmentTally, find_subject_folders

    try:
        folders = find_subject_folders(tree)
    except BadTree as error:
        _fail(str(error), code=EXIT_BAD_INPUT)
    console = Console()
    lineup = open_lineup_reporting(get_settings(), console, since=called)
    gallery = lineup.gallery
    console.print(f"{sum(len(f.photos) for f in folders)} photos of {len(folders)} subjects")
    tally = EnrollmentTally()
    started = time.perf_counter()
    interrupted = False
    try:
        _enroll_with_progress(gallery, folders, face=face, create=create, tally=tally)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        lineup.close()  # saves the index, so the next start replays less
        _print_enroll_summary(console, tally, elapsed=time.perf_counter() - started)
    if interrupted:
        console.print("[yellow]interrupted[/]: run the same command again to resume")
        raise typer.Exit(EXIT_INTERRUPTED)


class _RateColumn(ProgressColumn):
    """Photos per second over the whole run so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:.1f} photos/s", style="progress.data.speed")


def _enroll_with_progress(
    gallery: "Gallery",
    folders: "list[SubjectFolder]",
    *,
    face: FaceChoice,
    create: bool,
    tally: "EnrollmentTally",
) -> None:
    from app.audit.actor import local_actor
    from app.gallery.bulk_enroll import enroll_tree

    total = sum(len(folder.photos) for folder in folders)
    columns = (*Progress.get_default_columns()[:2], MofNCompleteColumn(), _RateColumn())
    with Progress(*columns, TimeElapsedColumn()) as bar:
        task = bar.add_task("enrolling", total=total)
        enroll_tree(
            gallery,
            folders,
            policy="largest" if face is FaceChoice.largest else "single",
            create=create,
            tally=tally,
            by=local_actor("enroll"),
            on_photo=lambda _path, _outcome: bar.advance(task),
        )


def _print_enroll_summary(console: Console, tally: "EnrollmentTally", *, elapsed: float) -> None:
    summary = Table(title="enrollment", show_header=False, box=None)
    summary.add_row("enrolled", str(tally.enrolled))
    summary.add_row("duplicate", str(tally.duplicate))
    for reason, count in sorted(tally.refused.items()):
        summary.add_row(f"refused: {reason}", str(count))
    if tally.skipped:
        summary.add_row("skipped (no such subject)", str(tally.skipped))
    summary.add_row("subjects created", str(len(tally.created_subjects)))
    rate = tally.photos / elapsed if elapsed > 0 else 0.0
    summary.add_row("time", f"{tally.photos} photos in {elapsed:.1f} s = {rate:.2f} photos/s")
    console.print(summary)
    if tally.missing_subjects:
        missing = ", ".join(tally.missing_subjects)
        console.print(f"not in the gallery (--no-create): {escape(missing)}")
    _print_refusals(console, tally)


def _print_refusals(console: Console, tally: "EnrollmentTally") -> None:
    if not tally.refusals:
        return
    table = Table(title="refused photos")
    table.add_column("photo", overflow="fold")  # a path cut short is no use
    table.add_column("reason")
    table.add_column("detail")
    for path, outcome in tally.refusals[:REFUSALS_LISTED]:
        table.add_row(
            escape(f"{path.parent.name}/{path.name}"), outcome.reason, escape(outcome.detail or "")
        )
    console.print(table)
    if len(tally.refusals) > REFUSALS_LISTED:
        console.print(f"… and {len(tally.refusals) - REFUSALS_LISTED} more")


@app.command()
def probe(
    image: Annotated[
        Path, typer.Argument(help="The probe photo.", exists=True, dir_okay=False, readable=True)
    ],
    k: Annotated[
        int | None,
        typer.Option(min=1, max=100, help="Candidates per face; default LINEUP_DEFAULT_K."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(min=-1.0, max=1.0, help="Cosine similarity for a match; default: calibrated."),
    ] = None,
    case: Annotated[
        str,
        typer.Option(
            "--case",
            help="The case this search is for (1-200 characters); recorded in the audit trail.",
        ),
    ] = "",
    purpose: Annotated[
        str | None, typer.Option(help="Why the search is run; recorded in the audit trail.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ProbeResult JSON.")] = False,
) -> None:
    """Search the gallery for every face in IMAGE: ranked candidates, or no match.

    Like the API's, every probe is recorded in the audit trail against its --case.
    """
    called = time.perf_counter()
    from app.audit.actor import Case, local_actor
    from app.config import get_settings
    from app.vision.errors import ImageRejected

    if not 1 <= len(case.strip()) <= 200 or case != case.strip():
        _fail(
            "--case is required: the case reference this search is for (1-200 characters)",
            code=EXIT_BAD_INPUT,
        )

    settings = get_settings()
    data = image.read_bytes()
    lineup = open_lineup_reporting(settings, Console(stderr=True), since=called)
    gallery = lineup.gallery
    try:
        result = gallery.probe(
            data,
            k=k or settings.default_k,
            threshold=threshold,
            by=local_actor("probe"),
            case=Case(reference=case, purpose=purpose),
        )
    except ImageRejected as error:
        _fail(f"{image}: {error} ({error.code})", code=EXIT_BAD_INPUT)
    finally:
        lineup.close()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    _print_probe(Console(), result)


def _print_probe(console: Console, result: ProbeResult) -> None:
    version = result.model_version
    console.print(
        f"model {version.backbone} ({version.weights_hash[:12]}), "
        f"threshold {result.threshold:.3f}, k {result.k}"
    )
    if not result.faces:
        console.print("no face found in the photo")
    for number, face in enumerate(result.faces, start=1):
        console.print(_candidates_table(number, face))
        console.print(_decision(face, threshold=result.threshold))
    console.print(f"[italic]{LEADS_NOT_IDENTIFICATION}[/]")


def _candidates_table(number: int, face: ProbeFace) -> Table:
    """Names are people's input: escaped, so a "[" in one is not read as rich markup."""
    box = face.box
    table = Table(
        "rank",
        "subject",
        "external id",
        "similarity",
        "match?",
        title=f"face {number}: box ({box.x1:.0f}, {box.y1:.0f})–({box.x2:.0f}, {box.y2:.0f}), "
        f"detection {face.detection_probability:.2f}",
        title_justify="left",
    )
    for candidate in face.candidates:
        table.add_row(
            str(candidate.rank),
            escape(candidate.subject.display_name),
            escape(candidate.subject.external_id or ""),
            f"{candidate.similarity:.3f}",
            "yes" if candidate.above_threshold else "no",
        )
    return table


def _decision(face: ProbeFace, *, threshold: float) -> str:
    if face.decision == "match":
        best = face.candidates[0]
        return (
            f"[bold green]MATCH[/]: {escape(best.subject.display_name)} "
            f"(similarity {best.similarity:.3f} ≥ {threshold:.3f})"
        )
    if face.decision == "too_small":
        return f"[bold]not searched[/]: {escape(face.detail or 'the face is too small')}"
    if not face.candidates:
        return "[bold]no match[/] (the gallery is empty)"
    return (
        f"[bold]no match[/] (best similarity {face.candidates[0].similarity:.3f} < {threshold:.3f})"
    )


# Models: what can embed, and moving the gallery onto one of them.
models_app = typer.Typer(help="Built-in backbones and fine-tuned models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """The built-in backbones and the fine-tuned models under LINEUP_MODELS_DIR.

    Each with its weights hash (the model version it makes), embedding size,
    the threshold its card calibrated for those exact weights, how it was
    trained, and which one the gallery's database has active.
    """
    from rich import box

    from app.config import get_settings
    from app.gallery.model_catalog import list_models

    table = Table(title="models", title_justify="left", box=box.MINIMAL)
    # Names, hashes and numbers cut short are no use; only the training summary may wrap.
    for header in ("model", "weights", "dim", "threshold"):
        table.add_column(header, no_wrap=True)
    table.add_column("training")
    table.add_column("active", no_wrap=True)
    notes: list[str] = []
    for entry in list_models(get_settings()):
        table.add_row(
            escape(entry.name),
            entry.weights_hash or "—",
            str(entry.embedding_dim),
            f"{entry.threshold:.3f}" if entry.threshold is not None else "—",
            escape(_training_summary(entry)),
            "[bold green]active[/]" if entry.active else "",
        )
        if entry.note:
            notes.append(f"{escape(entry.name)}: {escape(entry.note)}")
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note)


@models_app.command("import-edgeface")
def models_import_edgeface(
    source: Annotated[
        Path,
        typer.Argument(help="The published files and their README, e.g. ../shared/models/edgeface"),
    ],
) -> None:
    """Convert EdgeFace's published int8 weights to float32 under LINEUP_MODELS_DIR.

    Each file is checked against the sha256 its README publishes first; the
    licences are copied beside the weights and the card says where they came from.
    """
    from app.config import get_settings
    from app.training.import_edgeface import EdgeFaceImportRefused, import_edgeface

    try:
        imported = import_edgeface(source, get_settings().models_dir)
    except EdgeFaceImportRefused as error:
        _fail(str(error), code=EXIT_BAD_INPUT)
    for model in imported:
        typer.echo(f"{model.name}: {model.weights} (weights {model.weights_hash})")


def _training_summary(entry: "ModelEntry") -> str:
    """ "built in", or what a fine-tuned model's card says it was trained from and how."""
    if entry.kind != "fine-tuned":
        return entry.kind.replace("-", " ")
    epochs = (
        f"{entry.epochs} epoch{'' if entry.epochs == 1 else 's'}"
        if entry.epochs is not None
        else "epochs unknown"
    )
    return f"{entry.base or 'unknown base'} + {entry.loss or 'unknown loss'}, {epochs}"


@app.command()
def reindex(
    model: Annotated[str, typer.Argument(help="A built-in backbone or a fine-tuned model's name.")],
) -> None:
    """Re-embed every enrolled face with MODEL and make it the gallery's model.

    The same work as POST /admin/reindex, in this process. It also recovers a
    gallery whose active model was lost (the service refuses to start then):
    the faces MODEL has no embedding for are embedded while the gallery opens.
    Ctrl-C stops it with nothing switched.
    """
    called = time.perf_counter()
    from app.config import get_settings
    from app.gallery.reindex import ReindexRefused
    from app.jobs.context import JobContext
    from app.jobs.runners import run_reindex
    from app.vision.backbones.registry import UnknownBackbone, require_known_backbone

    settings = get_settings()
    try:
        require_known_backbone(model, models_dir=settings.models_dir)
    except UnknownBackbone as error:
        _fail(str(error), code=EXIT_BAD_INPUT)
    console = Console()
    lineup = open_lineup_reporting(settings, console, since=called, recover_with=model)
    gallery = lineup.gallery
    try:
        active = gallery.active_model()
        if active.backbone == model:
            console.print(f"{escape(active.key)} is the active model version; nothing to re-embed")
            return
        columns = (*Progress.get_default_columns(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(f"reindexing to {escape(model)}", total=1.0)
            result = run_reindex(
                JobContext(gallery=gallery, settings=settings),
                {"backbone": model},
                lambda fraction, _message: bar.update(task, completed=fraction),
                lambda: False,
            )
    except ReindexRefused as error:
        _fail(str(error), code=EXIT_FAILED)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: nothing was switched")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        lineup.close()
    version = result["model_version"]
    console.print(
        f"now on {escape(version['backbone'])}@{version['weights_hash']}: "
        f"{result['faces']} faces, {result['realigned']} re-aligned from their photos, "
        f"{result['caught_up']} enrolled meanwhile"
    )


def open_lineup_reporting(
    settings: "Settings", console: Console, *, since: float, recover_with: str | None = None
) -> "Lineup":
    """Load the model and the gallery, saying how long it took `since` the command began
    (importing torch is most of it); a start-up refusal is reported in one line."""
    from app.composition import open_lineup
    from app.gallery.startup import StartupRefused

    with console.status("loading the model and the gallery"):
        try:
            lineup = open_lineup(settings, recover_with=recover_with)
        except StartupRefused as error:
            _fail(str(error), code=EXIT_FAILED)
    console.print(f"model and gallery loaded in {time.perf_counter() - since:.1f} s")
    return lineup


def _fail(message: str, *, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# Fine-tuning and measurement live in their own module; they are commands all the same.
app.command()(cli_training.train)
app.command()(cli_training.evaluate)
# So do keys, the audit trail and retention.
app.add_typer(cli_access.keys_app, name="keys")
app.add_typer(cli_access.audit_app, name="audit")
app.command()(cli_access.purge)


def main() -> None:
    app()
