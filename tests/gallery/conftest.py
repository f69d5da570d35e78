"""A real gallery, opened through the composition root on a temporary directory.

These tests sit below HTTP: they call `Gallery` as every front door does.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.composition import Lineup, open_lineup
from app.vision.embedder import FaceEmbedder

from gallery_support import LineupOpener, settings_for


@pytest.fixture(scope="session")
def open_at(embedder: FaceEmbedder) -> LineupOpener:
    """Open Lineup on a data directory (again, for a restart), closing it on the way out."""

    @contextmanager
    def opened(data_dir: Path, **overrides: object) -> Iterator[Lineup]:
        lineup = open_lineup(settings_for(data_dir, **overrides), embedder=embedder)
        try:
            yield lineup
        finally:
            lineup.close()

    return opened
