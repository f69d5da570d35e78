"""Batches of m photos per identity, drawn reproducibly epoch by epoch.

Triplet and contrastive losses only learn from batches that hold several
photos of each person, so batches come from pytorch-metric-learning's
`MPerClassSampler`: `classes_per_batch` identities, `m` photos of each (drawn
with replacement only when an identity has fewer than m).

That sampler draws from `pytorch_metric_learning.utils.common_functions.NUMPY_RANDOM`,
numpy's global generator by default. Here each epoch's draw runs with that
hook pointed, under a lock, at a generator seeded by (seed, epoch), and with
a fresh sampler (it shuffles its own state in place), so an epoch's batches
depend on nothing else: a resumed run sees the same batches as an
uninterrupted one, and global random state is left alone.
"""

import threading
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray
from pytorch_metric_learning.samplers import MPerClassSampler
from pytorch_metric_learning.utils import common_functions
from torch.utils.data import Sampler

_HOOK_LOCK = threading.Lock()


class EpochSampler(Sampler[int]):
    """Indices for `batches` batches of `m × classes_per_batch` photos; call `set_epoch` first."""

    def __init__(
        self,
        labels: NDArray[np.int64],
        *,
        m: int,
        classes_per_batch: int,
        batches: int,
        seed: int,
    ) -> None:
        identities = len(np.unique(labels))
        if classes_per_batch > identities:
            raise ValueError(
                f"{classes_per_batch} identities per batch, but the data has only {identities}"
            )
        self.labels = labels
        self.m = m
        self.batch_size = m * classes_per_batch
        self.length = batches * self.batch_size
        self.seed = seed
        self.epoch = 0
        # Built now so impossible settings fail here, not at the first epoch.
        self._indices_per_epoch: int = len(self._new_sampler())

    def _new_sampler(self) -> MPerClassSampler:
        """A fresh sampler: MPerClassSampler shuffles its identity list in place, so one
        reused across epochs would make each epoch's batches depend on the epochs before."""
        return MPerClassSampler(
            self.labels, self.m, batch_size=self.batch_size, length_before_new_iter=self.length
        )

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's batches the next iteration gives."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self._indices_per_epoch

    def __iter__(self) -> Iterator[int]:
        sampler = self._new_sampler()
        generator = np.random.RandomState([self.seed, self.epoch])
        with _HOOK_LOCK:
            saved = common_functions.NUMPY_RANDOM
            common_functions.NUMPY_RANDOM = generator
            try:
                indices = [int(index) for index in sampler]
            finally:
                common_functions.NUMPY_RANDOM = saved
        return iter(indices)
