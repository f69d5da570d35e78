"""The shapes of job requests and answers, for the admin API and the CLI."""

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.training.network import BLOCKS
from app.training.train_config import TrainConfig
from app.vision.backbones.finetuned import MODEL_NAME, is_model_name
from app.vision.backbones.registry import BACKBONES
from app.vision.device import DeviceName

JobKind = Literal["retrain", "reindex"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobOut(BaseModel):
    """A job as it stands: `progress` runs from 0 to 1, `message` says what it is doing."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: JobKind
    status: JobStatus
    progress: float
    message: str
    parameters: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None = Field(
        description="Last sign of life of the running job; stale means stuck."
    )


class ReindexRequest(BaseModel):
    """Re-embed every enrolled face with `backbone`, then switch searches to it."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = Field(
        description="Embedding network, by name (as LINEUP_BACKBONE): a built-in one or a "
        "fine-tuned model under the models dir."
    )

    @field_validator("backbone")
    @classmethod
    def _plausible_backbone(cls, name: str) -> str:
        """Only the form here; whether a fine-tuned model of that name exists is asked
        of the models dir when the job is submitted."""
        if name not in BACKBONES and not is_model_name(name):
            raise ValueError(f"unknown backbone {name!r}; built in: {', '.join(BACKBONES)}")
        return name


class FolderDataset(BaseModel):
    """A photo tree on the server, one sub-folder per identity (optionally one part of a split).

    Both paths must lie inside the training root (LINEUP_TRAINING_ROOT); relative
    ones are taken from it (see `app.jobs.training_sets`).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["folder"]
    path: Path = Field(
        description="A training set inside the training root (LINEUP_TRAINING_ROOT), relative "
        "to it or absolute; one sub-folder per identity."
    )
    split: Path | None = Field(
        default=None,
        description="Identity split JSON inside the training root, e.g. celeba's; relative "
        "to the root or absolute.",
    )
    part: str = Field(default="train", description="Which identities of the split.")


class GalleryDataset(BaseModel):
    """The gallery's own subjects with at least `min_photos` enrolled faces, from stored chips."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["gallery"]
    min_photos: int = Field(default=4, ge=2, le=1000)


class RetrainRequest(BaseModel):
    """Fine-tune dlib's ResNet into a new model `name` (a folder under the models dir).

    The hyperparameters are `TrainConfig`'s; `classes_per_batch` defaults to
    16 or the number of identities, whichever is smaller.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=f"^{MODEL_NAME.pattern}$", description="The new model's name and folder name."
    )
    dataset: Annotated[FolderDataset | GalleryDataset, Field(discriminator="kind")]
    loss: str = TrainConfig.default("loss")
    miner: str | None = None
    margin: float = Field(default=TrainConfig.default("margin"), gt=0.0, le=2.0)
    pos_margin: float = Field(default=TrainConfig.default("pos_margin"), ge=0.0, le=2.0)
    neg_margin: float = Field(default=TrainConfig.default("neg_margin"), gt=0.0, le=2.0)
    epochs: int = Field(default=TrainConfig.default("epochs"), ge=1, le=1000)
    m_per_class: int = Field(default=TrainConfig.default("m_per_class"), ge=2, le=64)
    classes_per_batch: int | None = Field(default=None, ge=2, le=1024)
    batches_per_epoch: int | None = Field(default=None, ge=1)
    lr: float = Field(default=TrainConfig.default("lr"), gt=0.0, le=1.0)
    pretrained_lr_factor: float = Field(default=TrainConfig.default("pretrained_lr_factor"), gt=0.0)
    freeze_depth: int = Field(default=TrainConfig.default("freeze_depth"), ge=0, le=len(BLOCKS))
    head_dim: int | None = Field(default=None, ge=2, le=4096)
    augment: bool = TrainConfig.default("augment")
    views: Literal["single", "paired"] = TrainConfig.default("views")
    reference: Literal["batch", "pretrained"] = TrainConfig.default("reference")
    distillation: float = Field(default=TrainConfig.default("distillation"), ge=0.0, le=100.0)
    composites: float = Field(default=TrainConfig.default("composites"), ge=0.0, lt=1.0)
    seed: int = TrainConfig.default("seed")

    @field_validator("name")
    @classmethod
    def _not_built_in(cls, name: str) -> str:
        if name in BACKBONES:
            raise ValueError(f"{name!r} is a built-in backbone; choose a new name")
        return name

    @model_validator(mode="after")
    def _trainable(self) -> "RetrainRequest":
        """Unknown losses and miners fail now, not when the job runs."""
        self.train_config(checkpoint_dir=Path("unused"), identities=2, device="cpu")
        return self

    def train_config(
        self, *, checkpoint_dir: Path, identities: int, device: DeviceName
    ) -> TrainConfig:
        """The run this request asks for, on data with `identities` identities.

        Every field but the model's name and its data is a `TrainConfig` setting
        of the same name.
        """
        widest = min(TrainConfig.default("classes_per_batch"), identities)
        return TrainConfig(
            checkpoint_dir=checkpoint_dir,
            classes_per_batch=self.classes_per_batch or widest,
            device=device,
            **self.model_dump(exclude={"name", "dataset", "classes_per_batch"}),
        )
