"""The backbones Lineup can embed with, by name: an explicit table of built-ins, no reflection,
and the fine-tuned models found as folders under the models dir."""

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from app.vision.backbones.base import Backbone
from app.vision.backbones.dlib_backbone import DlibResnetBackbone
from app.vision.backbones.facenet import FacenetBackbone
from app.vision.backbones.finetuned import FineTunedBackbone, finetuned_models, is_model_name

DEFAULT_BACKBONE = "dlib-resnet"

BackboneFactory = Callable[[torch.device, Path | None], Backbone]


class UnknownBackbone(ValueError):
    """A name that is neither a built-in backbone nor a fine-tuned model; the message lists both."""

    code = "unknown_backbone"


def _dlib(device: torch.device, weights: Path | None) -> Backbone:
    return DlibResnetBackbone(device, weights_path=weights)


def _facenet(device: torch.device, weights: Path | None, *, name: str) -> Backbone:
    return FacenetBackbone(name=name, weights=weights, device=device)


BACKBONES: dict[str, BackboneFactory] = {
    "dlib-resnet": _dlib,
    "facenet-vggface2": partial(_facenet, name="facenet-vggface2"),
    "facenet-casia": partial(_facenet, name="facenet-casia"),
}


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
        return factory(device, weights)
    require_known_backbone(name, models_dir=models_dir)
    assert models_dir is not None  # a fine-tuned model was found there
    return FineTunedBackbone(name=name, directory=models_dir / name, device=device)
