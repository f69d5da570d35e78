"""Cached chips as a torch dataset: (pixels, identity label), augmented on demand.

A single view is a 3×S×S chip, augmented (`augment_chip`). Paired views are a
2×3×S×S stack of the same photo twice, mirrored and colour-jittered alike:
clean, and CCTV-damaged, so every batch holds the pair the service meets, an
enrolled photo and a camera still of one person.

With `composites` > 0, that fraction of the items (drawn anew each epoch)
is a composite face of the item's photo and a photo of someone else
(`app.training.composites`), labelled as a person of its own.

Augmentation draws from a generator seeded by (seed, epoch, index), never
from global state, so a photo's view in a given epoch is the same whether
the run was resumed or not and however many loader workers there are.
"""

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import Dataset

from app.training.chips import ChipSet
from app.training.composites import composite_face
from app.training.degrade import AugmentationSettings, augment_chip, colour_jitter, random_cctv


class ChipDataset(Dataset[tuple[Tensor, int]]):
    """The chips of a `ChipSet` with their labels; `augmentation=None` gives them untouched."""

    def __init__(
        self,
        chips: ChipSet,
        *,
        augmentation: AugmentationSettings | None = None,
        paired: bool = False,
        composites: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.chips = chips
        self.paired = paired
        self.labels = chips.labels()
        if composites > 0 and len(np.unique(self.labels)) < 2:
            raise ValueError("a composite face needs photos of at least two identities")
        self.composites = composites
        self._first_composite_label = int(self.labels.max(initial=-1)) + 1
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's augmentations the next items get."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.chips)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        chip, face_width, label = self._face(index, rng=rng)
        if self.paired:
            views = np.stack(self._pair(chip, face_width=face_width, rng=rng))
            return torch.from_numpy(views).permute(0, 3, 1, 2).float(), label
        if self.augmentation is not None:
            chip = augment_chip(chip, face_width=face_width, rng=rng, settings=self.augmentation)
        # PIL-backed arrays are read-only; "W" copies those (only those) for torch.
        pixels = torch.from_numpy(np.require(chip, requirements=("C", "W"))).permute(2, 0, 1)
        return pixels.float(), label

    def composite_label(self, index: int) -> int:
        """The label of item `index` when it is a composite: above every real label, and
        different for every index, so a composite's only positives are its own views."""
        return self._first_composite_label + index

    def _face(
        self, index: int, *, rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], float, int]:
        """Item `index`'s chip, its face width and its label: its photo, or a composite."""
        chip = self.chips.chip(index)
        face_width = self.chips.records[index].chip_face_width
        # No draw at all without composites, so that older runs' augmentations stay as they were.
        if self.composites == 0 or rng.random() >= self.composites:
            return chip, face_width, int(self.labels[index])
        other = self._someone_else(index, rng=rng)
        mixed = composite_face(chip, self.chips.chip(other), rng=rng)
        width = (face_width + self.chips.records[other].chip_face_width) / 2
        return mixed, width, self.composite_label(index)

    def _someone_else(self, index: int, *, rng: np.random.Generator) -> int:
        """A photo, drawn uniformly, of an identity other than item `index`'s."""
        while True:
            other = int(rng.integers(len(self.labels)))
            if self.labels[other] != self.labels[index]:
                return other

    def _pair(
        self, chip: NDArray[np.uint8], *, face_width: float, rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """The clean view (mirrored, jittered) and the same view CCTV-damaged."""
        settings = self.augmentation or AugmentationSettings()
        if rng.random() < settings.flip_probability:
            chip = np.ascontiguousarray(chip[:, ::-1])
        clean = colour_jitter(chip, rng=rng, settings=settings)
        return clean, random_cctv(clean, face_width=face_width, rng=rng, settings=settings)
