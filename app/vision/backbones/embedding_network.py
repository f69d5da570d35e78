"""dlib's face ResNet with an optional projection head: the shape of every fine-tuned model.

Training (`app.training.network`) builds and trains it; the fine-tuned backbone
(`app.vision.backbones.finetuned`) loads it back for inference. It lives here,
beside the ResNet it wraps, so that serving a fine-tuned model needs nothing
from the training package.

The head (Linear 128→d, no bias) starts as an orthogonal projection, which
keeps the pretrained geometry (nearly) intact instead of scrambling it with
random weights; at d = 128 it keeps every similarity exactly.
"""

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias
from torch import Tensor, nn

from app.vision.backbones.dlib_resnet import EMBEDDING_DIM, DlibFaceResNet


class EmbeddingNetwork(nn.Module):
    """150×150 RGB chips (N×3×150×150 floats, 0..255) → N×D unit-length embeddings."""

    def __init__(
        self, backbone: DlibFaceResNet, *, head_dim: int | None = None, seed: int = 0
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head: nn.Linear | None = None
        if head_dim is not None:
            self.head = nn.Linear(EMBEDDING_DIM, head_dim, bias=False)
            # Its own generator: the same seed gives the same head, whatever else ran before.
            generator = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                nn.init.orthogonal_(self.head.weight, generator=generator)

    @property
    def embedding_dim(self) -> int:
        return EMBEDDING_DIM if self.head is None else self.head.out_features

    def forward(self, pixels: Tensor) -> Tensor:
        """L2-normalised embeddings of a batch of chips."""
        descriptors: Tensor = self.backbone(pixels)
        if self.head is not None:
            descriptors = self.head(descriptors)
        return F.normalize(descriptors, dim=1)
