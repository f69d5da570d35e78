"""The sidecar that says what an index file holds and how it was built.

It sits beside the index as `<name>.json` and is small enough to read on its
own, so start-up can compare an index with the database (count, ids checksum,
model version) before deciding to load it or rebuild it.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike

from app.index.atomic import atomic_write
from app.index.errors import IndexCorruptError, IndexMissingError
from app.index.validation import as_ids

# Bump when the sidecar's fields or the meaning of the index file change;
# files of another format are rebuilt, not migrated.
FORMAT_VERSION = 2


def ids_checksum(ids: ArrayLike) -> str:
    """Return the sha256 hex digest of `ids` sorted, as little-endian int64 bytes.

    Order-independent, so the ids of an index and the face ids of the
    database for the same model version give the same digest exactly when
    they are the same set (ids are unique on both sides).
    """
    ordered = np.sort(as_ids(ids)).astype("<i8", copy=False)
    return hashlib.sha256(ordered.tobytes()).hexdigest()


def utc_now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexManifest:
    """What an index file holds (kind, dim, count, ids) and who asked for it.

    `model_version` is the opaque string the caller gave when saving; the
    index itself knows nothing of models. `change_seq` is the last change of
    the caller's change log the index contains (0 when the caller keeps none),
    so a loader replays only what came after it. `params` holds an approximate
    index's build and search parameters (M, efSearch, nlist, nprobe…); it is
    left out of the JSON when empty, so an exact index's sidecar reads as it
    did before approximate kinds existed.
    """

    format_version: int
    kind: str
    model_version: str
    dim: int
    count: int
    ids_checksum: str
    built_at: str
    faiss_version: str
    change_seq: int
    params: dict[str, int | float | str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The manifest as pretty, key-sorted JSON text."""
        raw = asdict(self)
        if not raw["params"]:
            del raw["params"]
        return json.dumps(raw, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Parse `to_json`'s output; raise `IndexCorruptError` on anything else."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise IndexCorruptError(f"sidecar is not valid JSON: {error}") from error
        if not isinstance(raw, dict):
            raise IndexCorruptError("sidecar is not a JSON object")
        scalars = {item.name: _field(raw, item.name, item.type) for item in fields(cls)[:-1]}
        return cls(**scalars, params=_params(raw))


def _params(raw: dict[str, Any]) -> dict[str, int | float | str]:
    """The optional `params` object: absent means none; anything but scalars is corrupt."""
    params = raw.get("params", {})
    if not isinstance(params, dict) or not all(
        type(value) in (int, float, str) for value in params.values()
    ):
        raise IndexCorruptError("sidecar field 'params' is not an object of numbers and strings")
    return params


def _field(raw: dict[str, Any], name: str, expected: object) -> Any:
    """Return `raw[name]` if present and of the `expected` type (int or str)."""
    value = raw.get(name)
    # An exact type match, so a JSON `true` is not taken for the count 1.
    if type(value) is not expected:
        raise IndexCorruptError(f"sidecar field {name!r} is missing or not {expected}")
    return value


def sidecar_path(index_path: Path) -> Path:
    """Where the sidecar of the index at `index_path` lives."""
    return index_path.with_suffix(".json")


def write_manifest(manifest: IndexManifest, index_path: Path) -> None:
    """Write `manifest` atomically as the sidecar of `index_path`."""
    with atomic_write(sidecar_path(index_path)) as handle:
        handle.write(manifest.to_json().encode("utf-8"))


def read_manifest(index_path: Path) -> IndexManifest:
    """Read the sidecar of `index_path`.

    Raises `IndexMissingError` when neither index nor sidecar exists, and
    `IndexCorruptError` when the sidecar alone is missing or is unreadable.
    """
    path = sidecar_path(index_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        if not index_path.exists():
            raise IndexMissingError(f"no index at {index_path}") from error
        raise IndexCorruptError(f"index {index_path} has no sidecar {path}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise IndexCorruptError(f"cannot read sidecar {path}: {error}") from error
    return IndexManifest.from_json(text)
