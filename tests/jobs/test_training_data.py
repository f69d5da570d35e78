"""What a retrain on the gallery learns from: the stored chips cut for dlib's template.

A real gallery on SQLite: two people enrolled under dlib, then a reindex to a
facenet model (random weights, 160-px chips) and more faces enrolled under
it, whose chips a dlib-based fine-tuning cannot use.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from facenet_pytorch import InceptionResnetV1

from app.composition import open_lineup
from app.config import Settings
from app.gallery.enroll import Upload
from app.gallery.errors import OperationCancelled
from app.gallery.files import FileStore
from app.gallery.service import Gallery
from app.jobs.schemas import GalleryDataset
from app.jobs.training_data import gallery_chips, gallery_identities
from app.schemas import SubjectCreate
from app.training.dataset import ChipDataset
from app.vision.embedder import FaceEmbedder

from access_support import BY

CPU = torch.device("cpu")
EVERY_FACE = GalleryDataset(kind="gallery", min_photos=2)


def uploads(faces_dir: Path, person: str, numbers: tuple[int, ...]) -> list[Upload]:
    paths = [faces_dir / "lfw_mini" / person / f"{person}_{n:04d}.jpg" for n in numbers]
    return [Upload(filename=path.name, data=path.read_bytes()) for path in paths]


@pytest.fixture
def gallery(
    tmp_path: Path, faces_dir: Path, embedder: FaceEmbedder
) -> Iterator[tuple[Gallery, dict[str, int]]]:
    """Tom and Emma (2 dlib chips each), then under facenet: Heidi (2), and Tom once more."""
    settings = Settings(
        data_dir=tmp_path / "data", models_dir=tmp_path / "models", match_threshold=0.6
    )
    lineup = open_lineup(settings, embedder=embedder)
    gallery = lineup.gallery
    subjects = {
        person: gallery.create_subject(SubjectCreate(display_name=person), by=BY).id
        for person in ("Tom_Hanks", "Emma_Watson", "Heidi_Klum")
    }

    def enroll(person: str, numbers: tuple[int, ...]) -> None:
        result = gallery.enroll(
            subjects[person], uploads(faces_dir, person, numbers), policy="largest", by=BY
        )
        assert result.enrolled == len(numbers), result

    enroll("Tom_Hanks", (1, 2))
    enroll("Emma_Watson", (1, 2))
    torch.manual_seed(0)
    weights = tmp_path / "facenet.pt"
    torch.save(InceptionResnetV1(pretrained=None, classify=False).state_dict(), weights)
    gallery.reindex("facenet-vggface2", device=CPU, models_dir=settings.models_dir, weights=weights)
    enroll("Heidi_Klum", (1, 2))
    enroll("Tom_Hanks", (3,))
    try:
        yield gallery, subjects
    finally:
        lineup.close()


def test_only_chips_cut_for_dlib_are_used_and_copied_aside(
    gallery: tuple[Gallery, dict[str, int]], tmp_path: Path
) -> None:
    service, subjects = gallery
    files = FileStore(service.files_root)
    assert gallery_identities(service, EVERY_FACE) == 2
    assert gallery_identities(service, GalleryDataset(kind="gallery", min_photos=3)) == 0

    chips = gallery_chips(
        service, EVERY_FACE, snapshot_dir=tmp_path / "snap", cancelled=lambda: False
    )
    assert chips.identities() == [f"subject-{subjects[p]}" for p in ("Tom_Hanks", "Emma_Watson")]
    assert len(chips) == 4 and dict(chips.skipped) == {"chip_for_another_template": 3}
    for index, record in enumerate(chips.records):
        assert (tmp_path / "snap" / record.chip_file).is_file()
        face_id = int(Path(record.chip_file).stem)
        stored = files.read_chip(files.chip_path(face_id))
        np.testing.assert_array_equal(chips.chip(index), stored)
        assert stored.shape == (150, 150, 3)
        # dlib's template puts the eyes ~50 px apart in a 150-px chip; the box is wider.
        assert 60 < record.chip_face_width < 150
        assert (files.root / record.photo).is_file()
    pixels, label = ChipDataset(chips)[0]
    assert tuple(pixels.shape) == (3, 150, 150) and label == 0  # Tom: subject 1, first


def test_a_face_deleted_meanwhile_is_skipped_and_can_leave_a_subject_short(
    gallery: tuple[Gallery, dict[str, int]], tmp_path: Path
) -> None:
    files = FileStore(gallery[0].files_root)
    emma = gallery[1]["Emma_Watson"]
    (first, _) = [face.id for face in gallery[0].list_faces(emma)]
    (files.root / files.chip_path(first)).unlink()
    chips = gallery_chips(
        gallery[0], EVERY_FACE, snapshot_dir=tmp_path / "snap", cancelled=lambda: False
    )
    assert chips.identities() == [f"subject-{gallery[1]['Tom_Hanks']}"]
    assert dict(chips.skipped) == {
        "chip_for_another_template": 3,
        "deleted_meanwhile": 1,
        "subject_with_too_few_faces": 1,
    }
    with pytest.raises(OperationCancelled):
        gallery_chips(
            gallery[0], EVERY_FACE, snapshot_dir=tmp_path / "again", cancelled=lambda: True
        )
