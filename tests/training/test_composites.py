"""Composite faces: a morph or a seam of two people, and the dataset items made of them."""

import numpy as np
import pytest

from app.training.chips import ChipSet
from app.training.composites import MORPH_WEIGHTS, composite_face
from app.training.dataset import ChipDataset
from app.training.degrade import AugmentationSettings

SIZE = 150
TOP, BOTTOM = 200, 50


def plain(value: int) -> np.ndarray:
    return np.full((SIZE, SIZE, 3), value, dtype=np.uint8)


def composites_by_kind() -> tuple[np.ndarray, np.ndarray]:
    """One morph and one seam of two plain chips, from the first seeds that give each."""
    made: dict[str, np.ndarray] = {}
    for seed in range(20):
        mixed = composite_face(plain(TOP), plain(BOTTOM), rng=np.random.default_rng(seed))
        made["morph" if len(np.unique(mixed)) == 1 else "seam"] = mixed
    return made["morph"], made["seam"]


def test_a_morph_blends_the_two_faces_everywhere_alike() -> None:
    morph, _ = composites_by_kind()
    low, high = MORPH_WEIGHTS
    value = int(morph[0, 0, 0])
    assert BOTTOM + low * (TOP - BOTTOM) - 1 <= value <= BOTTOM + high * (TOP - BOTTOM) + 1


def test_a_seam_puts_one_persons_eyes_over_the_others_mouth() -> None:
    _, seam = composites_by_kind()
    column = seam[:, 0, 0].astype(int)
    assert column[int(0.4 * SIZE)] == TOP  # the eyes' row
    assert column[int(0.75 * SIZE)] == BOTTOM  # the mouth's row
    assert np.all(np.diff(column) <= 0)  # one soft seam, no stripes


def test_chips_of_different_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        composite_face(plain(TOP), plain(BOTTOM)[:100], rng=np.random.default_rng(0))


def test_composite_items_are_persons_of_their_own(lfw_chips: ChipSet) -> None:
    dataset = ChipDataset(
        lfw_chips, augmentation=AugmentationSettings(), paired=True, composites=0.5, seed=1
    )
    real = set(lfw_chips.labels().tolist())
    labels = [dataset[i][1] for i in range(len(dataset))]
    composites = [label for label in labels if label not in real]
    assert 0 < len(composites) < len(labels)
    assert len(set(composites)) == len(composites)
    assert composites == [dataset.composite_label(labels.index(c)) for c in composites]


def test_without_composites_every_item_is_its_own_photo(lfw_chips: ChipSet) -> None:
    dataset = ChipDataset(lfw_chips, augmentation=None, paired=False)
    pixels, label = dataset[3]
    assert label == lfw_chips.labels()[3]
    assert np.array_equal(pixels.permute(1, 2, 0).numpy(), lfw_chips.chip(3))


def test_composites_need_two_identities(lfw_chips: ChipSet) -> None:
    one_person = lfw_chips.subset(lfw_chips.identities()[:1])
    with pytest.raises(ValueError, match="two identities"):
        ChipDataset(one_person, paired=True, composites=0.5)
