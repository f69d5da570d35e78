"""LINEUP_INDEX_KIND reaches the gallery: its index is built, saved and loaded as that kind."""

import json
from pathlib import Path

import pytest

from access_support import BY, SEARCH_CASE
from gallery_support import LineupOpener, enroll_emma, lfw_upload, new_subject


@pytest.mark.parametrize(("setting", "stored"), [("hnsw", "faiss-hnsw"), ("ivf", "faiss-ivf")])
def test_a_gallery_on_an_approximate_index_answers_exactly_and_restarts_on_it(
    open_at: LineupOpener, tmp_path: Path, faces_dir: Path, setting: str, stored: str
) -> None:
    data = tmp_path / "data"
    with open_at(data, index_kind=setting) as lineup:
        subject = new_subject(lineup, "Emma")
        kept = enroll_emma(lineup, faces_dir, subject, 1)
        gone = enroll_emma(lineup, faces_dir, subject, 2)
        lineup.gallery.delete_face(gone.id, by=BY)
    (sidecar,) = (data / "index").glob("*.json")
    assert json.loads(sidecar.read_text())["kind"] == stored
    with open_at(data, index_kind=setting) as again:
        probe = lfw_upload(faces_dir, "Emma_Watson", 1).data
        (face,) = again.gallery.probe(probe, k=5, by=BY, case=SEARCH_CASE).faces
        (best,) = face.candidates
        assert best.face_id == kept.id and best.similarity > 0.999
        stats = again.gallery.stats()
        assert stats.faces == stats.index_size == 1
