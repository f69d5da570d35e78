"""m-per-class batches: their make-up, their reproducibility, and global random state left alone."""

from collections import Counter

import numpy as np
import pytest

from app.training.sampling import EpochSampler

# Five identities with 3 to 6 photos each.
LABELS = np.repeat(np.arange(5), [3, 4, 5, 6, 4]).astype(np.int64)


def batches(sampler: EpochSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    indices = list(sampler)
    size = sampler.batch_size
    return [indices[start : start + size] for start in range(0, len(indices), size)]


def test_each_batch_holds_m_distinct_photos_of_each_of_its_identities() -> None:
    sampler = EpochSampler(LABELS, m=2, classes_per_batch=3, batches=4, seed=0)
    assert len(sampler) == 4 * 6
    for batch in batches(sampler, epoch=1):
        counts = Counter(LABELS[batch].tolist())
        assert sorted(counts.values()) == [2, 2, 2]
        assert len(set(batch)) == len(batch)


def test_an_epochs_batches_depend_on_seed_and_epoch_only() -> None:
    sampler = EpochSampler(LABELS, m=2, classes_per_batch=3, batches=4, seed=0)
    again = EpochSampler(LABELS, m=2, classes_per_batch=3, batches=4, seed=0)
    assert batches(sampler, epoch=2) == batches(again, epoch=2)
    assert batches(sampler, epoch=2) != batches(sampler, epoch=3)
    other_seed = EpochSampler(LABELS, m=2, classes_per_batch=3, batches=4, seed=1)
    assert batches(sampler, epoch=2) != batches(other_seed, epoch=2)


def test_an_epochs_batches_do_not_depend_on_the_epochs_before() -> None:
    """What resuming relies on: epoch 3 of a run equals epoch 3 of a run resumed after 2."""
    uninterrupted = EpochSampler(LABELS, m=2, classes_per_batch=3, batches=4, seed=0)
    batches(uninterrupted, epoch=1)
    batches(uninterrupted, epoch=2)
    resumed = EpochSampler(LABELS, m=2, classes_per_batch=3, batches=4, seed=0)
    assert batches(uninterrupted, epoch=3) == batches(resumed, epoch=3)


def test_sampling_leaves_numpys_global_generator_alone() -> None:
    np.random.seed(42)
    expected = np.random.random()
    np.random.seed(42)
    batches(EpochSampler(LABELS, m=2, classes_per_batch=3, batches=4, seed=0), epoch=1)
    assert np.random.random() == expected


def test_more_identities_per_batch_than_the_data_has_is_refused() -> None:
    with pytest.raises(ValueError, match="only 5"):
        EpochSampler(LABELS, m=2, classes_per_batch=6, batches=1, seed=0)
