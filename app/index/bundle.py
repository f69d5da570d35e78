"""The file an approximate index is saved as: its FAISS structure and its exact vectors.

An uncompressed `.npz` (a zip of `.npy` arrays), read without pickle: `kind`,
`params` (JSON), `ids` (row → face id, -1 for a tombstone), `vectors` (float32,
one row each) and `structure` (the FAISS index serialised, empty while there
is none). A flat index's file is a plain FAISS file, so neither kind can be
mistaken for the other.
"""

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from app.index.atomic import atomic_write
from app.index.errors import IndexCorruptError, IndexMissingError

Params = dict[str, int | float | str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    """What an approximate index file holds, checked for shape but not for meaning."""

    kind: str
    params: Params
    ids: NDArray[np.int64]
    vectors: NDArray[np.float32]
    structure: faiss.Index | None


def write_bundle(path: Path, bundle: Bundle) -> None:
    """Write `bundle` to `path` atomically."""
    structure = (
        np.empty(0, dtype=np.uint8)
        if bundle.structure is None
        else faiss.serialize_index(bundle.structure)
    )
    with atomic_write(path) as handle:
        np.savez(
            handle,
            kind=np.array(bundle.kind),
            params=np.array(json.dumps(bundle.params, sort_keys=True)),
            ids=bundle.ids,
            vectors=bundle.vectors,
            structure=structure,
        )


def read_bundle(path: Path, *, kind: str) -> Bundle:
    """Read a bundle of `kind` from `path`.

    Raises `IndexMissingError` if there is no file, `IndexCorruptError` if it is
    unreadable, of another kind, or its arrays disagree.
    """
    if not path.is_file():
        raise IndexMissingError(f"no index file at {path}")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            raw = {name: arrays[name] for name in ("kind", "params", "ids", "vectors", "structure")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise IndexCorruptError(f"{path} is not a {kind} index file: {error}") from error
    if str(raw["kind"]) != kind:
        raise IndexCorruptError(f"{path} holds a {raw['kind']} index, not {kind}")
    return Bundle(
        kind=kind,
        params=_params(str(raw["params"]), path),
        ids=_checked_ids(raw["ids"], path),
        vectors=_checked_vectors(raw["vectors"], raw["ids"].size, path),
        structure=_structure(raw["structure"], path),
    )


def _params(text: str, path: Path) -> Params:
    """The JSON object of build parameters, or `IndexCorruptError`."""
    try:
        params = json.loads(text)
    except json.JSONDecodeError as error:
        raise IndexCorruptError(f"{path}: unreadable parameters: {error}") from error
    if not isinstance(params, dict):
        raise IndexCorruptError(f"{path}: parameters are not an object")
    return params


def _checked_ids(ids: NDArray[Any], path: Path) -> NDArray[np.int64]:
    if ids.ndim != 1 or ids.dtype != np.int64:
        raise IndexCorruptError(f"{path}: ids of shape {ids.shape} and dtype {ids.dtype}")
    held = ids[ids >= 0]
    if np.unique(held).size != held.size:
        raise IndexCorruptError(f"{path}: an id appears twice")
    return np.asarray(ids, dtype=np.int64)


def _checked_vectors(vectors: NDArray[Any], rows: int, path: Path) -> NDArray[np.float32]:
    if vectors.ndim != 2 or vectors.dtype != np.float32 or vectors.shape[0] != rows:
        raise IndexCorruptError(f"{path}: vectors of shape {vectors.shape} for {rows} ids")
    if vectors.shape[1] < 1:
        raise IndexCorruptError(f"{path} declares dimension {vectors.shape[1]}")
    return np.asarray(vectors, dtype=np.float32)


def _structure(serialised: NDArray[Any], path: Path) -> faiss.Index | None:
    if serialised.size == 0:
        return None
    try:
        return faiss.deserialize_index(np.ascontiguousarray(serialised, dtype=np.uint8))
    except RuntimeError as error:
        raise IndexCorruptError(f"{path}: unreadable FAISS structure: {error}") from error
