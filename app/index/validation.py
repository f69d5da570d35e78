"""Checks that turn caller input into the exact arrays an index stores.

Indexes call these before touching their storage, so a refused call leaves
them unchanged and every implementation refuses the same things.
"""

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Embeddings arrive L2-normalised; a norm further than this from 1 means a
# caller forgot to normalise, and inner products would no longer be cosines.
UNIT_NORM_TOLERANCE = 1e-3

_INT64_MAX = np.iinfo(np.int64).max


def as_ids(ids: ArrayLike) -> NDArray[np.int64]:
    """Return `ids` as a 1-D int64 array of non-negative ids, or raise ValueError.

    Negative ids are refused because FAISS uses -1 to mean "no result".
    """
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"ids must be a 1-D array, got shape {array.shape}")
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"ids must be integers, got dtype {array.dtype}")
    if array.min() < 0 or array.max() > _INT64_MAX:
        raise ValueError("ids must be non-negative int64 values")
    return np.ascontiguousarray(array, dtype=np.int64)


def as_unique_ids(ids: ArrayLike) -> NDArray[np.int64]:
    """Return `ids` like `as_ids`, refusing an id that appears twice."""
    checked = as_ids(ids)
    unique, counts = np.unique(checked, return_counts=True)
    if unique.size != checked.size:
        repeated = unique[counts > 1][:5].tolist()
        raise ValueError(f"ids must be unique within a batch; repeated: {repeated}")
    return checked


def as_unit_vectors(vectors: ArrayLike, *, dim: int, name: str) -> NDArray[np.float32]:
    """Return `vectors` as a C-contiguous (N, dim) float32 array of unit rows, or raise.

    `name` ("vectors", "queries") only makes the error message point at the
    right argument.
    """
    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}), got {array.shape}")
    if array.dtype.kind != "f":
        raise ValueError(f"{name} must be floating point, got dtype {array.dtype}")
    converted = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(converted).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    norms = np.linalg.norm(converted, axis=1)
    off = np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(f"{name} must be L2-normalised; row {row} has norm {norms[row]:.6g}")
    return converted


def check_k(k: int) -> int:
    """Return `k` if it is a positive integer, else raise ValueError."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def check_dim(dim: int) -> int:
    """Return `dim` if it is a positive integer, else raise ValueError."""
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return int(dim)


def checked_additions(
    ids: ArrayLike, vectors: ArrayLike, *, dim: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """`ids` and `vectors` as `add` takes them: unique ids, one unit vector of `dim` each."""
    checked_ids = as_unique_ids(ids)
    checked_vectors = as_unit_vectors(vectors, dim=dim, name="vectors")
    if checked_ids.size != checked_vectors.shape[0]:
        raise ValueError(f"got {checked_ids.size} ids for {checked_vectors.shape[0]} vectors")
    return checked_ids, checked_vectors
