"""The backbones Lineup can embed with, by name: an explicit table of built-ins, no reflection,
and the fine-tuned models found as folders under the models dir."""

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from app.vision.backbones.base import Backbone
from app.vision.backbones.dlib_backbone import DlibResnetBackbone
from app.vision.backbones.edgeface import EdgeFaceBackbone
from app.vision.backbones.facenet import FacenetBackbone
from app.vision.backbones.finetuned import (
    BUILT_IN_NAMES,
    FineTunedBackbone,
    finetuned_models,
    is_model_name,
)

DEFAULT_BACKBONE = "dlib-resnet"

BackboneFactory = Callable[[torch.device, Path | None, Path | None], Backbone]
"""(device, a weights file overriding the default, the models dir) → the backbone."""


class UnknownBackbone(ValueError):
    """A name that is neither a built-in backbone nor a fine-tuned model; the message lists both."""

    code = "unknown_backbone"


def _dlib(device: torch.device, weights: Path | None, _models_dir: Path | None) -> Backbone:
    return DlibResnetBackbone(device, weights_path=weights)


def _facenet(
    device: torch.device, weights: Path | None, _models_dir: Path | None, *, name: str
) -> Backbone:
    return FacenetBackbone(name=name, weights=weights, device=device)


def _edgeface(
    device: torch.device, weights: Path | None, models_dir: Path | None, *, name: str
) -> Backbone:
    return EdgeFaceBackbone(name=name, device=device, weights=weights, models_dir=models_dir)


BACKBONES: dict[str, BackboneFactory] = {
    "dlib-resnet": _dlib,
    "edgeface-xs": partial(_edgeface, name="edgeface-xs"),
    "edgeface-xxs": partial(_edgeface, name="edgeface-xxs"),
    "facenet-vggface2": partial(_facenet, name="facenet-vggface2"),
    "facenet-casia": partial(_facenet, name="facenet-casia"),
}
assert set(BACKBONES) == BUILT_IN_NAMES


def is_known_backbone(name: str, *, models_dir: Path | None) -> bool:
    """Whether `create_backbone(name, models_dir=models_dir)` would find `name`."""
    return name in BACKBONES or (
        models_dir is not None and is_model_name(name) and name in finetuned_models(models_dir)
    )


def require_known_backbone(name: str, *, models_dir: Path | None) -> str:
    """`name`, or `UnknownBackbone` listing the built-ins and the fine-tuned models found."""
    if is_known_backbone(name, models_dir=models_dir):
        return name
    found = finetuned_models(models_dir) if models_dir is not None else []
    tuned = ", ".join(found) if found else "none"
    where = f" under {models_dir}" if models_dir is not None else ""
    raise UnknownBackbone(
        f"unknown backbone {name!r}; built in: {', '.join(BACKBONES)}; "
        f"fine-tuned models{where}: {tuned}"
    )


def create_backbone(
    name: str,
    *,
    device: torch.device,
    weights: Path | None = None,
    models_dir: Path | None = None,
) -> Backbone:
    """Build backbone `name` on `device`.

    A built-in name takes `weights` as an override of its default weights
    file. Any other name is a fine-tuned model: the folder
    `models_dir/<name>/` holding `weights.safetensors`.
    """
    factory = BACKBONES.get(name)
    if factory is not None:
        return factory(device, weights, models_dir)
    require_known_backbone(name, models_dir=models_dir)
    assert models_dir is not None  # a fine-tuned model was found there
    return FineTunedBackbone(name=name, directory=models_dir / name, device=device)
