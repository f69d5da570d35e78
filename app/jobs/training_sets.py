"""The photo trees and split files on the server that a retrain request names.

They must lie inside the training root (`LINEUP_TRAINING_ROOT`, default
`<data dir>/training-sets`), the one folder an operator fills with training
sets. A relative path is taken from the root, and every path is resolved,
symlinks followed, before it is compared with the root, so neither `..` nor a
link placed in the root reaches outside it. The root holds training sets; it
is not one itself. A refusal names the path as the request gave it, never
what a file holds: a broken split file is reported with the line that broke.

`lineup train` runs as the operator on any tree it is given, and does not come
through here.
"""

import json
from pathlib import Path

from app.gallery.errors import RetrainRefused
from app.jobs.schemas import FolderDataset

MAX_SPLIT_BYTES = 16 * 1024 * 1024
SPLIT_SHAPE = "it must map each part's name to a list of identity folder names"


def confine_dataset(dataset: FolderDataset, *, root: Path) -> FolderDataset:
    """`dataset` with its folder and split file resolved inside `root` (an absolute,
    resolved path); `RetrainRefused` if either is outside it or missing."""
    if not root.is_dir():
        raise RetrainRefused(
            f"the training root {root} does not exist; create it and put training sets in "
            "it, or point LINEUP_TRAINING_ROOT at the folder that holds them"
        )
    path = _inside(dataset.path, root=root, what="dataset folder")
    if not path.is_dir():
        raise RetrainRefused(f"dataset folder {dataset.path} is not a folder")
    split = None
    if dataset.split is not None:
        split = _inside(dataset.split, root=root, what="split file")
        if not split.is_file():
            raise RetrainRefused(f"split file {dataset.split} is not a file")
    return dataset.model_copy(update={"path": path, "split": split})


def _inside(path: Path, *, root: Path, what: str) -> Path:
    """`path` (relative to `root`, or absolute), resolved, strictly below `root`, present."""
    try:
        # Not strict: whether a path outside the root exists is none of the caller's business,
        # so containment is decided first and existence only inside.
        resolved = (root / path).resolve(strict=False)
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise RetrainRefused(f"{what} {path} cannot be resolved") from error
    if resolved == root:
        raise RetrainRefused(
            f"{what} {path} is the training root itself; name a training set inside it"
        )
    if root not in resolved.parents:
        raise RetrainRefused(
            f"{what} {path} is outside the training root {root} (LINEUP_TRAINING_ROOT); "
            "give a path inside it, relative to it or absolute"
        )
    if not resolved.exists():
        raise RetrainRefused(f"{what} {path} does not exist in the training root {root}")
    return resolved


def split_identities(split: Path, part: str) -> list[str]:
    """The identity names listed under `part` in the split file, sorted.

    `RetrainRefused` if the file is not a split file or has no such part; the
    message never quotes the file.
    """
    try:
        if split.stat().st_size > MAX_SPLIT_BYTES:
            raise _not_a_split(split, f"larger than {MAX_SPLIT_BYTES // (1024 * 1024)} MiB")
        text = split.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _not_a_split(split, "not UTF-8 text") from None
    except OSError as error:
        raise RetrainRefused(f"split file {split} cannot be read ({error.strerror})") from None
    try:
        parts = json.loads(text)
    except json.JSONDecodeError as error:
        raise _not_a_split(split, f"line {error.lineno}") from None
    except RecursionError:
        raise _not_a_split(split, "nested too deeply") from None
    if not _is_split(parts):
        raise _not_a_split(split, SPLIT_SHAPE)
    if part not in parts:
        raise RetrainRefused(f"split file {split} has no {part!r} part")
    return sorted(parts[part])


def _is_split(parts: object) -> bool:
    return isinstance(parts, dict) and all(
        isinstance(names, list) and all(isinstance(name, str) for name in names)
        for names in parts.values()
    )


def _not_a_split(split: Path, why: str) -> RetrainRefused:
    return RetrainRefused(f"split file {split} is not a valid split file ({why})")
