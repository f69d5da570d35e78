"""Replace a file so that a crash leaves either the old version or the new.

The content goes to a temporary file beside the target (same filesystem, so
the rename is atomic), is flushed to disk, and is renamed over the target;
the directory is then flushed so the rename itself survives a power cut.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces `path` when the block succeeds.

    If the block raises, `path` is untouched and the temporary file removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    temp_path = Path(temp_name)
    try:
        if hasattr(os, "fchmod"):
            # mkstemp makes the file private (0600); an index is not a secret,
            # and other local tools (backups, a CLI run as another user) read it.
            os.fchmod(descriptor, 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Flush `directory`'s entries (renames, creations) to disk where the OS allows."""
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows cannot open directories; its renames are journalled.
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
