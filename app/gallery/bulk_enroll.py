"""Enrolling a folder tree, one sub-folder per subject, so that it can be resumed.

`lineup enroll` is the front door. A photo whose bytes are already enrolled for
its subject (same SHA-256) is reported as a duplicate *before* the model runs,
so re-running after an interruption costs one hash per finished photo and
redoes only the photos that were not finished. The gallery's own duplicate
check, under its write lock, stays the guarantee; this one only saves time.
"""

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from app.audit.actor import Actor
from app.gallery.enroll import FacePolicy, Upload
from app.gallery.service import Gallery
from app.schemas import PhotoOutcome, SubjectCreate

log = logging.getLogger(__name__)

# What Pillow reads and people keep photos in; anything else in a folder (notes,
# sidecars, thumbnails databases) is not a photo and is left alone.
PHOTO_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)
MAX_EXTERNAL_ID = 128  # the `subjects.external_id` column's length


class BadTree(ValueError):
    """The folder given cannot be read as one sub-folder per subject."""


@dataclass(frozen=True)
class SubjectFolder:
    """One subject's folder: its name is the external id, its photos are enrolled."""

    path: Path
    photos: tuple[Path, ...]

    @property
    def external_id(self) -> str:
        return self.path.name

    @property
    def display_name(self) -> str:
        """`Tom_Hanks` reads as "Tom Hanks"."""
        return " ".join(self.path.name.replace("_", " ").split()) or self.path.name


@dataclass
class EnrollmentTally:
    """What a bulk enrollment did so far; complete even if it was interrupted."""

    enrolled: int = 0
    duplicate: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    refusals: list[tuple[Path, PhotoOutcome]] = field(default_factory=list)
    skipped: int = 0
    created_subjects: list[str] = field(default_factory=list)
    missing_subjects: list[str] = field(default_factory=list)

    @property
    def photos(self) -> int:
        """Photos dealt with, whatever became of them."""
        return self.enrolled + self.duplicate + self.refused.total() + self.skipped

    def record(self, path: Path, outcome: PhotoOutcome) -> None:
        if outcome.status == "enrolled":
            self.enrolled += 1
        elif outcome.status == "duplicate":
            self.duplicate += 1
        else:
            self.refused[outcome.reason or "unknown"] += 1
            self.refusals.append((path, outcome))


PhotoDone = Callable[[Path, PhotoOutcome | None], None]
"""Called after each photo with its outcome (None: skipped, its subject does not exist)."""


def find_subject_folders(root: Path) -> list[SubjectFolder]:
    """Every non-hidden sub-folder of `root` with its photos, by name; files in `root` are
    ignored because they belong to no subject."""
    if not root.is_dir():
        raise BadTree(f"{root} is not a folder")
    folders = [
        SubjectFolder(path=entry, photos=tuple(_photos_in(entry)))
        for entry in sorted(root.iterdir())
        if entry.is_dir() and not entry.name.startswith(".")
    ]
    too_long = [f.external_id for f in folders if len(f.external_id) > MAX_EXTERNAL_ID]
    if too_long:
        raise BadTree(
            f"folder names are external ids of at most {MAX_EXTERNAL_ID} characters: "
            + ", ".join(name[:40] + "…" for name in too_long)
        )
    unusable = [f.external_id for f in folders if not _usable_as_subject(f)]
    if unusable:
        raise BadTree(
            "folder names become external ids and names, which must be plain text "
            "(no control characters, no surrounding spaces, valid UTF-8): "
            + ", ".join(ascii(name) for name in unusable)
        )
    return folders


def _usable_as_subject(folder: SubjectFolder) -> bool:
    """Whether the API would take the folder's subject, checked before any photo is read."""
    try:
        SubjectCreate(display_name=folder.display_name, external_id=folder.external_id)
        folder.external_id.encode("utf-8")
    except (ValidationError, UnicodeEncodeError):
        return False
    return True


def _photos_in(folder: Path) -> list[Path]:
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.suffix.lower() in PHOTO_SUFFIXES and not entry.name.startswith(".")
    )


def enroll_tree(
    gallery: Gallery,
    folders: Iterable[SubjectFolder],
    *,
    policy: FacePolicy,
    create: bool,
    tally: EnrollmentTally,
    by: Actor,
    on_photo: PhotoDone | None = None,
) -> None:
    """Enroll each folder's photos for its subject, recording into `tally` as it goes.

    The caller owns `tally`, so after a KeyboardInterrupt it still says what was done.
    Subjects are found by external id; missing ones are created unless `create` is off.
    """
    for folder in folders:
        subject_id = _subject_for(gallery, folder, create=create, tally=tally, by=by)
        if subject_id is None:
            tally.skipped += len(folder.photos)
            for path in folder.photos:
                if on_photo is not None:
                    on_photo(path, None)
            continue
        _enroll_folder(
            gallery, subject_id, folder, policy=policy, tally=tally, on_photo=on_photo, by=by
        )


def _subject_for(
    gallery: Gallery, folder: SubjectFolder, *, create: bool, tally: EnrollmentTally, by: Actor
) -> int | None:
    found = gallery.subject_id_for(folder.external_id)
    if found is not None:
        return found
    if not create:
        log.warning("no subject with external id %r; its folder is skipped", folder.external_id)
        tally.missing_subjects.append(folder.external_id)
        return None
    subject = gallery.create_subject(
        SubjectCreate(display_name=folder.display_name, external_id=folder.external_id), by=by
    )
    tally.created_subjects.append(folder.external_id)
    return subject.id


def _enroll_folder(
    gallery: Gallery,
    subject_id: int,
    folder: SubjectFolder,
    *,
    policy: FacePolicy,
    tally: EnrollmentTally,
    on_photo: PhotoDone | None,
    by: Actor,
) -> None:
    enrolled_hashes = gallery.photo_hashes(subject_id)
    for path in folder.photos:
        outcome = _enroll_photo(gallery, subject_id, path, policy, enrolled_hashes, by)
        tally.record(path, outcome)
        if on_photo is not None:
            on_photo(path, outcome)


def _enroll_photo(
    gallery: Gallery,
    subject_id: int,
    path: Path,
    policy: FacePolicy,
    enrolled_hashes: set[str],
    by: Actor,
) -> PhotoOutcome:
    """One photo, one call: an interruption loses at most the photo in progress."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return PhotoOutcome(
            filename=path.name, status="refused", reason="unreadable", detail=str(error)
        )
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 in enrolled_hashes:
        return PhotoOutcome(
            filename=path.name,
            status="duplicate",
            detail="this photo is already enrolled for the subject",
        )
    outcome = gallery.enroll(subject_id, [Upload(path.name, data)], policy=policy, by=by).photos[0]
    if outcome.status != "refused":
        enrolled_hashes.add(sha256)
    return outcome
