"""Cached chips as a torch dataset: (N×3×S×S pixels, identity label), augmented on demand.

Augmentation draws from a generator seeded by (seed, epoch, index), never
from global state, so a photo's view in a given epoch is the same whether
the run was resumed or not and however many loader workers there are.
"""

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from app.training.chips import ChipSet
from app.training.degrade import AugmentationSettings, augment_chip


class ChipDataset(Dataset[tuple[Tensor, int]]):
    """The chips of a `ChipSet` with their labels; `augmentation=None` gives them untouched."""

    def __init__(
        self,
        chips: ChipSet,
        *,
        augmentation: AugmentationSettings | None = None,
        seed: int = 0,
    ) -> None:
        self.chips = chips
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
        if self.augmentation is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            face_width = self.chips.records[index].chip_face_width
            chip = augment_chip(chip, face_width=face_width, rng=rng, settings=self.augmentation)
        # PIL-backed arrays are read-only; "W" copies those (only those) for torch.
        pixels = torch.from_numpy(np.require(chip, requirements=("C", "W"))).permute(2, 0, 1)
        return pixels.float(), int(self.labels[index])
