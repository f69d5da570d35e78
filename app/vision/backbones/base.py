"""The contract every face-embedding backbone fulfils."""

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from app.vision.alignment_template import AlignmentTemplate


@runtime_checkable
class Backbone(Protocol):
    """A network that turns aligned face chips into unit-length vectors.

    `version` identifies the exact weights (a hash of them), so every stored
    embedding can say which model made it; vectors from different versions
    are never compared.
    """

    name: str
    version: str
    template: AlignmentTemplate
    embedding_dim: int

    @property
    def input_size(self) -> int:
        """Side of the square chip, in pixels, that `embed` expects."""
        ...

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Embed `chips` (N×S×S×3 RGB uint8) as an N×D L2-normalised float32 array."""
        ...
