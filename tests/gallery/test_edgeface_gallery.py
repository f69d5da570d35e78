"""A gallery on EdgeFace: the right person first, strangers unmatched, and reindexing both ways
between dlib's 128-d space and EdgeFace's 512-d one."""

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.composition import Lineup, open_lineup
from app.gallery.enroll import Upload
from app.schemas import ProbeFace, SubjectCreate
from app.vision.backbones.registry import create_backbone
from app.vision.detection import MtcnnDetector
from app.vision.embedder import FaceEmbedder

from access_support import BY, SEARCH_CASE
from gallery_support import REPO_MODELS, settings_for

CPU = torch.device("cpu")
PEOPLE = (
    *("Abdullah_Gul", "Benjamin_Netanyahu", "Christine_Baumgartner", "Emma_Watson"),
    *("Heidi_Klum", "Jeong_Se-hyun", "Justin_Timberlake", "Mahathir_Mohamad"),
    *("Monica_Seles", "Queen_Elizabeth_II", "Sarah_Hughes", "Tom_Hanks"),
)


def photo(faces_dir: Path, person: str, number: int) -> Upload:
    path = faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"
    return Upload(filename=path.name, data=path.read_bytes())


def central(faces: list[ProbeFace], image: bytes) -> ProbeFace:
    """The face nearest the photo's centre: LFW's subject."""
    width, height = Image.open(BytesIO(image)).size

    def off_centre(face: ProbeFace) -> float:
        box = face.box
        return float(np.hypot((box.x1 + box.x2 - width) / 2, (box.y1 + box.y2 - height) / 2))

    return min(faces, key=off_centre)


@pytest.fixture(scope="module", params=["edgeface-xs", "edgeface-xxs"])
def enrolled(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    detector: MtcnnDetector,
    faces_dir: Path,
) -> Iterator[tuple[Lineup, dict[int, str]]]:
    """The 12 lfw_mini people, photos 1-3 each, in a gallery on one EdgeFace model."""
    name = request.param
    backbone = create_backbone(name, device=CPU, models_dir=REPO_MODELS)
    embedder = FaceEmbedder(detector=detector, backbone=backbone)
    data = tmp_path_factory.mktemp(name) / "data"
    lineup = open_lineup(settings_for(data, backbone=name), embedder=embedder)
    subjects = {}
    for person in PEOPLE:
        subject = lineup.gallery.create_subject(SubjectCreate(display_name=person), by=BY).id
        uploads = [photo(faces_dir, person, number) for number in (1, 2, 3)]
        outcome = lineup.gallery.enroll(subject, uploads, by=BY, policy="largest")
        assert all(result.face is not None for result in outcome.photos), outcome
        subjects[subject] = person
    yield lineup, subjects
    lineup.close()


def test_the_right_person_comes_first(
    enrolled: tuple[Lineup, dict[int, str]], faces_dir: Path
) -> None:
    lineup, subjects = enrolled
    assert lineup.gallery.stats().model_version.embedding_dim == 512
    right = 0
    for person in PEOPLE:
        for number in (4, 5):
            probe = photo(faces_dir, person, number).data
            result = lineup.gallery.probe(probe, k=3, by=BY, case=SEARCH_CASE)
            best = central(result.faces, probe).candidates[0]
            right += subjects[best.subject.id] == person
    assert right >= 23, f"{right} of 24"


def test_a_stranger_gets_no_match_at_the_calibrated_threshold(
    enrolled: tuple[Lineup, dict[int, str]], faces_dir: Path
) -> None:
    lineup, _ = enrolled
    for path in sorted((faces_dir / "deepface" / "person_01").glob("*.jpg"))[:2]:
        result = lineup.gallery.probe(path.read_bytes(), k=3, by=BY, case=SEARCH_CASE)
        assert result.faces, path
        assert all(face.decision == "no_match" for face in result.faces), result


def test_reindexing_goes_from_dlib_to_edgeface_and_back(
    tmp_path: Path, embedder: FaceEmbedder, faces_dir: Path
) -> None:
    data = tmp_path / "data"
    lineup = open_lineup(settings_for(data), embedder=embedder)
    try:
        subject = lineup.gallery.create_subject(SubjectCreate(display_name="Emma"), by=BY).id
        lineup.gallery.enroll(subject, [photo(faces_dir, "Emma_Watson", n) for n in (1, 2)], by=BY)
        for backbone, dim in (("edgeface-xs", 512), ("dlib-resnet", 128)):
            lineup.gallery.reindex(backbone, device=CPU, models_dir=REPO_MODELS)
            stats = lineup.gallery.stats()
            assert (stats.model_version.backbone, stats.model_version.embedding_dim) == (
                backbone,
                dim,
            )
            assert stats.faces == stats.index_size == 2
            # An enrolled photo comes back as itself: its face was re-cut on this
            # backbone's template from the stored photo, as a probe's face is.
            probe = photo(faces_dir, "Emma_Watson", 1).data
            result = lineup.gallery.probe(probe, k=1, by=BY, case=SEARCH_CASE)
            (best,) = central(result.faces, probe).candidates
            assert best.subject.id == subject and best.similarity > 0.99, best
            other = photo(faces_dir, "Emma_Watson", 3).data
            result = lineup.gallery.probe(other, k=1, by=BY, case=SEARCH_CASE)
            assert central(result.faces, other).decision == "match"
    finally:
        lineup.close()
