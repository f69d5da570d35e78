"""Helpers of the gallery tests: settings, uploads and what lies on disk."""

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from app.composition import Lineup
from app.config import Settings
from app.gallery.enroll import Upload
from app.schemas import FaceOut, SubjectCreate

from access_support import BY

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"

LineupOpener = Callable[..., AbstractContextManager[Lineup]]


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, models_dir=REPO_MODELS, device="cpu", **overrides)


def lfw_upload(faces_dir: Path, person: str, number: int) -> Upload:
    path = faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"
    return Upload(filename=path.name, data=path.read_bytes())


def new_subject(lineup: Lineup, name: str) -> int:
    return lineup.gallery.create_subject(SubjectCreate(display_name=name), by=BY).id


def enroll_emma(lineup: Lineup, faces_dir: Path, subject: int, number: int) -> FaceOut:
    """Enroll Emma Watson's photo `number` for `subject`; its face, which must be enrolled."""
    (outcome,) = lineup.gallery.enroll(
        subject, [lfw_upload(faces_dir, "Emma_Watson", number)], by=BY
    ).photos
    assert outcome.face is not None, outcome
    return outcome.face


def gallery_files(data_dir: Path) -> set[str]:
    """Every file under photos/ and chips/, relative to the data directory."""
    return {
        f"{folder}/{path.name}"
        for folder in ("photos", "chips")
        for path in (data_dir / folder).iterdir()
    }
