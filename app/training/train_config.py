"""What a fine-tuning run is: every choice that shapes the weights, in one frozen record.

The config travels inside each checkpoint, so a resumed run can refuse to
continue with different choices (a new margin halfway through would make the
result a run nobody configured), while settings that only say where or how
long to run (`epochs`, `device`, `workers`, `keep_checkpoints`) may change.
"""

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from app.training.losses import DEFAULT_MINERS, LOSSES, Margins, build_objective
from app.training.network import BLOCKS, DEFAULT_FREEZE_DEPTH
from app.vision.device import DeviceName

OPTIMIZERS = ("adamw", "sgd")
VIEWS = ("single", "paired")
REFERENCES = ("batch", "pretrained")
# May differ between a checkpoint and the run that resumes it.
RESUMABLE_CHANGES = frozenset({"checkpoint_dir", "epochs", "device", "workers", "keep_checkpoints"})
# The margins a loss never reads, so a run may resume whatever they say (a
# triplet run saved before the contrastive defaults changed still resumes).
UNUSED_MARGINS = {
    "triplet": frozenset({"pos_margin", "neg_margin"}),
    "contrastive": frozenset({"margin"}),
}


@dataclass(frozen=True)
class TrainConfig:
    """A fine-tuning run. Margins are distances between unit vectors (0..2).

    A batch holds `classes_per_batch` identities × `m_per_class` photos; an
    epoch is `batches_per_epoch` batches (None: as many as the photos fill).
    Pretrained tensors learn at `lr × pretrained_lr_factor × their RMS`
    (`network.parameter_groups`), the head at `lr`. The first `freeze_depth`
    blocks of `network.BLOCKS` (by default the stem and two stages, which see
    edges and textures any face shares) keep dlib's weights.

    `views`: each photo enters a batch once, augmented (`single`), or twice,
    clean and CCTV-damaged (`paired`). `reference`: triplets are mined among
    the batch's own embeddings (`batch`), or every embedding of the batch is an
    anchor whose positives and negatives are the *pretrained* network's
    embeddings of the clean views (`pretrained`): a damaged face is pulled
    towards where dlib puts its person's clean photos, and a clean face is
    held where dlib put it, which is what keeps clean accuracy while the
    network learns to see through CCTV damage.

    `distillation` weighs a second term (`losses.distillation_loss`, paired
    views only): every view's embedding is pulled onto the pretrained
    network's embedding of its clean view, so a CCTV twin is taught to land
    exactly where dlib puts the sharp photo, and a clean view to stay where it
    was. The triplet term says who is nearer than whom; this one says where.

    `composites` is the fraction of each epoch's photos replaced by a
    composite face of that photo and a photo of someone else, a person of
    its own (`app.training.composites`; paired views only): faces the network
    has never seen, so that what it learns about CCTV damage is not only how
    the training people look.
    """

    checkpoint_dir: Path
    loss: str = "triplet"
    miner: str | None = None
    margin: float = 0.05
    # Contrastive margins sit in dlib's own geometry: on training identities its
    # same-person distances centre on 0.32 and nine in ten impostors lie beyond 0.49.
    pos_margin: float = 0.3
    neg_margin: float = 0.5
    epochs: int = 2
    m_per_class: int = 4
    classes_per_batch: int = 16
    batches_per_epoch: int | None = None
    optimizer: str = "adamw"
    lr: float = 1e-3
    pretrained_lr_factor: float = 0.3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    freeze_depth: int = DEFAULT_FREEZE_DEPTH
    head_dim: int | None = None
    augment: bool = True
    views: str = "paired"
    reference: str = "pretrained"
    distillation: float = 0.0
    composites: float = 0.0
    seed: int = 0
    device: DeviceName = "auto"
    workers: int = 0
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        self._check_objective()
        self._check_views()
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose {OPTIMIZERS}")
        if not 0 <= self.freeze_depth <= len(BLOCKS):
            raise ValueError(f"freeze_depth must be 0..{len(BLOCKS)} ({', '.join(BLOCKS)})")
        positive = {
            "epochs": self.epochs,
            "m_per_class": self.m_per_class,
            "classes_per_batch": self.classes_per_batch,
            "keep_checkpoints": self.keep_checkpoints,
            "lr": self.lr,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.m_per_class < 2:
            raise ValueError("m_per_class must be at least 2: a batch needs same-person pairs")

    def _check_views(self) -> None:
        if self.views not in VIEWS:
            raise ValueError(f"unknown views {self.views!r}; choose {VIEWS}")
        if self.reference not in REFERENCES:
            raise ValueError(f"unknown reference {self.reference!r}; choose {REFERENCES}")
        if self.views == "paired" and not self.augment:
            raise ValueError("paired views are a clean and a CCTV-damaged view: augment must be on")
        if self.reference == "pretrained" and self.head_dim not in (None, 128):
            raise ValueError("a pretrained reference is 128-d: use no head, or head_dim=128")
        if self.distillation < 0:
            raise ValueError(f"distillation is a weight, at least 0, not {self.distillation}")
        if self.distillation > 0 and (self.views != "paired" or self.head_dim not in (None, 128)):
            raise ValueError(
                "distillation pulls each view onto dlib's 128-d embedding of its clean twin: "
                "it needs paired views and no head (or head_dim=128)"
            )
        if not 0 <= self.composites < 1:
            raise ValueError(f"composites is a fraction in [0, 1), not {self.composites}")
        if self.composites > 0 and self.views != "paired":
            raise ValueError(
                "a composite is a person of its own, whose only positive is its twin view: "
                "composites need paired views"
            )

    def _check_objective(self) -> None:
        """Fail now, not after hours of data loading, on an unknown loss or miner."""
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; known: {', '.join(LOSSES)}")
        build_objective(loss=self.loss, miner=self.miner, margins=self.margins)

    @property
    def margins(self) -> Margins:
        return Margins(self.margin, pos_margin=self.pos_margin, neg_margin=self.neg_margin)

    @property
    def miner_name(self) -> str:
        """The miner used: the configured one, or the loss's default."""
        return DEFAULT_MINERS[self.loss] if self.miner is None else self.miner

    @property
    def batch_size(self) -> int:
        return self.m_per_class * self.classes_per_batch

    @classmethod
    def default(cls, name: str) -> Any:
        """The default recipe's value of setting `name` (the CLI and the retrain API offer it)."""
        return next(f.default for f in fields(cls) if f.name == name)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only, for checkpoints and model cards."""
        return {**asdict(self), "checkpoint_dir": str(self.checkpoint_dir)}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "TrainConfig":
        return cls(**{**values, "checkpoint_dir": Path(values["checkpoint_dir"])})

    def conflicts_with(self, saved: "TrainConfig") -> list[str]:
        """The settings, other than `RESUMABLE_CHANGES` and margins the loss does not
        use, in which `saved` differs from this."""
        free = RESUMABLE_CHANGES | UNUSED_MARGINS.get(self.loss, frozenset())
        names = [f.name for f in fields(self) if f.name not in free]
        return [name for name in names if getattr(self, name) != getattr(saved, name)]
