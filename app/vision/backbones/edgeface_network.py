"""EdgeFace's networks: timm's EdgeNeXt with its classifier replaced by a 512-d embedding head.

EdgeFace (George et al., IEEE T-BIOM 2024) trains EdgeNeXt, a hybrid of
convolutions and transposed attention built for edge devices, with a margin
loss on WebFace4M/12M. The architecture is timm's own; only the number of
outputs differs, so the network is built here by name and filled from a
weights file, never fetched (`pretrained=False`).
"""

import timm
from torch import nn

EMBEDDING_DIM = 512
INPUT_SIZE = 112

ARCHITECTURES = {
    "edgeface-xs": "edgenext_x_small",
    "edgeface-xxs": "edgenext_xx_small",
}
"""Lineup's name of each EdgeFace model, and the timm architecture it is."""


def build_edgeface_network(name: str) -> nn.Module:
    """An untrained EdgeFace network `name` (a key of `ARCHITECTURES`), in eval mode.

    Its input is N×3×112×112 pixels scaled to −1..1; its output N×512, not normalised.
    """
    return timm.create_model(
        ARCHITECTURES[name], pretrained=False, num_classes=EMBEDDING_DIM
    ).eval()
