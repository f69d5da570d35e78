"""Cached chips as a torch dataset: (pixels, identity label), augmented on demand.

A single view is a 3×S×S chip, augmented (`augment_chip`). Paired views are a
2×3×S×S stack of the same photo twice, mirrored and colour-jittered alike:
clean, and CCTV-damaged, so every batch holds the pair the service meets, an
enrolled photo and a camera still of one person.

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
from app.training.degrade import AugmentationSettings, augment_chip, colour_jitter, random_cctv


class ChipDataset(Dataset[tuple[Tensor, int]]):
    """The chips of a `ChipSet` with their labels; `augmentation=None` gives them untouched."""

    def __init__(
        self,
        chips: ChipSet,
        *,
        augmentation: AugmentationSettings | None = None,
        paired: bool = False,
        seed: int = 0,
    ) -> None:
        self.chips = chips
        self.paired = paired
        self.labels = chips.labels()
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's augmentations the next items get."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.chips)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        chip = self.chips.chip(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        face_width = self.chips.records[index].chip_face_width
        if self.paired:
            views = np.stack(self._pair(chip, face_width=face_width, rng=rng))
            return torch.from_numpy(views).permute(0, 3, 1, 2).float(), int(self.labels[index])
        if self.augmentation is not None:
            chip = augment_chip(chip, face_width=face_width, rng=rng, settings=self.augmentation)
        # PIL-backed arrays are read-only; "W" copies those (only those) for torch.
        pixels = torch.from_numpy(np.require(chip, requirements=("C", "W"))).permute(2, 0, 1)
        return pixels.float(), int(self.labels[index])

    def _pair(
        self, chip: NDArray[np.uint8], *, face_width: float, rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """The clean view (mirrored, jittered) and the same view CCTV-damaged."""
        settings = self.augmentation or AugmentationSettings()
        if rng.random() < settings.flip_probability:
            chip = np.ascontiguousarray(chip[:, ::-1])
        clean = colour_jitter(chip, rng=rng, settings=settings)
        return clean, random_cctv(clean, face_width=face_width, rng=rng, settings=settings)
