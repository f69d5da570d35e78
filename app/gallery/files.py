"""The gallery's files on disk: original photos and aligned chips, written atomically.

Files are named by database id, so a row always knows its file. Chips are kept
losslessly (PNG) because they are re-embedded when the model changes.
"""

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image


class FileStore:
    """Photos under `root/photos/`, chips under `root/chips/`; paths stored relative to `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for folder in ("photos", "chips"):
            (root / folder).mkdir(parents=True, exist_ok=True)

    def photo_path(self, photo_id: int, *, suffix: str) -> str:
        return f"photos/{photo_id}{suffix}"

    def chip_path(self, face_id: int) -> str:
        return f"chips/{face_id}.png"

    def write(self, relative: str, data: bytes) -> None:
        """Write `data` so that the file is either complete or absent, never half-written."""
        target = self.root / relative
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def write_chip(self, relative: str, chip: NDArray[np.uint8]) -> None:
        buffer = io.BytesIO()
        Image.fromarray(chip).save(buffer, format="PNG")
        self.write(relative, buffer.getvalue())

    def read_chip(self, relative: str) -> NDArray[np.uint8]:
        with Image.open(self.root / relative) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)

    def chip_jpeg(self, relative: str, *, quality: int = 92) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(self.read_chip(relative)).save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()

    def delete(self, relatives: list[str]) -> None:
        """Remove files; ones already gone are fine (a retried delete must succeed)."""
        for relative in relatives:
            (self.root / relative).unlink(missing_ok=True)
