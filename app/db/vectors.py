"""Packing embeddings into bytes for the `embeddings.vector` column.

The format is fixed (float32, little-endian, no header) so that rows stay
readable on any machine and the index can be rebuilt from them byte for byte.
"""

from typing import Any

import numpy as np
from numpy.typing import NDArray

_STORED_DTYPE = np.dtype("<f4")


def vector_to_bytes(vector: NDArray[Any]) -> bytes:
    """Pack a 1-D vector as float32 little-endian bytes."""
    array = np.asarray(vector)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {array.shape}")
    return array.astype(_STORED_DTYPE, copy=False).tobytes()


def vector_from_bytes(data: bytes, dim: int) -> NDArray[np.float32]:
    """Unpack `dim` float32 values; a length mismatch means a corrupt or foreign row."""
    expected = dim * _STORED_DTYPE.itemsize
    if len(data) != expected:
        raise ValueError(f"expected {expected} bytes for dim {dim}, got {len(data)}")
    # A native-order, writable copy: frombuffer alone is read-only.
    return np.frombuffer(data, dtype=_STORED_DTYPE).astype(np.float32)
