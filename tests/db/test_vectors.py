"""Embeddings survive the trip through bytes exactly, in a fixed format."""

import struct

import numpy as np
import pytest

from app.db.vectors import vector_from_bytes, vector_to_bytes


def test_round_trip_is_exact() -> None:
    vector = np.random.default_rng(0).standard_normal(128).astype(np.float32)

    restored = vector_from_bytes(vector_to_bytes(vector), 128)

    assert restored.dtype == np.float32
    assert np.array_equal(restored, vector)
    assert restored.flags.writeable


def test_format_is_float32_little_endian() -> None:
    assert vector_to_bytes(np.array([1.0, -2.5])) == struct.pack("<2f", 1.0, -2.5)
    big_endian = np.array([1.0, -2.5], dtype=">f8")
    assert vector_to_bytes(big_endian) == struct.pack("<2f", 1.0, -2.5)


def test_wrong_length_is_refused() -> None:
    data = vector_to_bytes(np.zeros(128, np.float32))
    with pytest.raises(ValueError, match="expected 256 bytes"):
        vector_from_bytes(data, 64)


def test_only_single_vectors_are_packed() -> None:
    with pytest.raises(ValueError, match="1-D"):
        vector_to_bytes(np.zeros((2, 4), np.float32))
