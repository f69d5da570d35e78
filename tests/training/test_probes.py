"""CCTV probes remade from the original photos: same face, same place, less detail.

LFW's faces are about 100 px wide and already soft, so shrinking them to
24–32 px costs them roughly half to four fifths of their Laplacian energy.
"""

import numpy as np

from app.training.chips import ChipSet
from app.training.degrade import to_greyscale
from app.training.probes import cctv_probe_chip, cctv_probe_chips


def detail(image: np.ndarray) -> float:
    """Mean squared discrete Laplacian of the first channel."""
    grey = image[..., 0].astype(np.float64)
    laplacian = (
        -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    )
    return float(np.mean(laplacian**2))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a[..., 0].ravel(), b[..., 0].ravel())[0, 1])


def test_a_probe_is_the_same_face_in_the_same_place_with_less_detail(
    lfw_chips: ChipSet,
) -> None:
    clean = to_greyscale(lfw_chips.chip(0))
    probe = cctv_probe_chip(lfw_chips, 0, seed=0)
    assert probe.shape == clean.shape and probe.dtype == np.uint8
    assert np.array_equal(probe[..., 0], probe[..., 2])
    assert detail(probe) < 0.6 * detail(clean)
    # Still aligned: far closer to its own clean chip than to another person's.
    other = to_greyscale(lfw_chips.chip(len(lfw_chips) - 1))
    assert correlation(probe, clean) > 0.9
    assert correlation(probe, clean) > correlation(probe, other) + 0.3


def test_probes_depend_on_seed_and_index_only(lfw_chips: ChipSet) -> None:
    both = cctv_probe_chips(lfw_chips, [1, 0], seed=3)
    assert np.array_equal(both[1], cctv_probe_chip(lfw_chips, 0, seed=3))
    assert not np.array_equal(both[1], cctv_probe_chip(lfw_chips, 0, seed=4))
    assert cctv_probe_chips(lfw_chips, [], seed=3).shape == (0, 150, 150, 3)
