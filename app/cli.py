"""`lineup`: the command line. A thin front door over `app.gallery` and `app.training`."""

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Lineup: face search over a gallery of known people.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _logging(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: LINEUP_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: LINEUP_PORT.")] = None,
) -> None:
    """Run the HTTP service (API, OpenAPI page at /docs)."""
    import uvicorn

    from app.config import get_settings
    from app.main import create_app

    settings = get_settings()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


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

    from app.config import get_settings
    from app.gallery.startup import build_embedder
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
    result = run_calibration(found.embeddings, found.labels(), fmr=fmr)
    summary = {
        "threshold": round(result.threshold, 6),
        "target_false_match_rate": fmr,
        "false_match_rate": result.false_match_rate,
        "true_match_rate": round(result.true_match_rate, 4),
        "genuine_pairs": result.genuine_pairs,
        "impostor_pairs": result.impostor_pairs,
        "photos": len(found.identities),
        "identities": len(set(found.identities)),
        "skipped_photos": dict(found.skipped),
        "data": f"{tree.name} {part} identities ({split.name})"
        + (f", first {per_identity} photos of each" if per_identity else ""),
    }
    typer.echo(json.dumps(summary, indent=2))
    if write_card:
        path = record_calibration(settings.models_dir, embedder.backbone, summary)
        typer.echo(f"recorded in {path}")


def main() -> None:
    app()
