"""Identifying weights files: the hash that names a model version."""

import hashlib
from pathlib import Path

VERSION_HEX_DIGITS = 16


class WeightsMissing(FileNotFoundError):
    """A backbone's weights file is not on this machine; the message says how to get it."""


def weights_version(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256: short, and unique in practice."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:VERSION_HEX_DIGITS]
