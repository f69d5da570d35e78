"""The backbones Lineup can embed with, by name: an explicit table, no reflection."""

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from app.vision.backbones.base import Backbone
from app.vision.backbones.dlib_backbone import DlibResnetBackbone
from app.vision.backbones.facenet import FacenetBackbone

DEFAULT_BACKBONE = "dlib-resnet"

BackboneFactory = Callable[[torch.device, Path | None], Backbone]


def _dlib(device: torch.device, weights: Path | None) -> Backbone:
    return DlibResnetBackbone(device, weights_path=weights)


def _facenet(device: torch.device, weights: Path | None, *, name: str) -> Backbone:
    return FacenetBackbone(name=name, weights=weights, device=device)


BACKBONES: dict[str, BackboneFactory] = {
    "dlib-resnet": _dlib,
    "facenet-vggface2": partial(_facenet, name="facenet-vggface2"),
    "facenet-casia": partial(_facenet, name="facenet-casia"),
}


def create_backbone(name: str, *, device: torch.device, weights: Path | None = None) -> Backbone:
    """Build backbone `name` on `device`; `weights` overrides its default weights file."""
    try:
        factory = BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}") from None
    return factory(device, weights)
