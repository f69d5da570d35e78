"""Running `lineup` in-process, as the CLI tests do: settings come from a fresh environment."""

from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from app.cli import app
from app.config import get_settings

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"


def invoke(args: list[str], *, data_dir: Path, models_dir: Path = REPO_MODELS) -> Result:
    """`lineup ARGS` on `data_dir` and `models_dir`, on the CPU.

    Settings are cached per process, so the cache is cleared on the way in (to
    read this environment) and on the way out (so no other test inherits it).
    """
    env = {
        "LINEUP_DATA_DIR": str(data_dir),
        "LINEUP_MODELS_DIR": str(models_dir),
        "LINEUP_DEVICE": "cpu",
        "COLUMNS": "250",  # rich would otherwise wrap tables at 80 columns
    }
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, args, env=env)
    finally:
        get_settings.cache_clear()
