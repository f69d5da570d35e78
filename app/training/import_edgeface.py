"""Bring EdgeFace's published weights into `models/`: checked, dequantised, described.

The published files (`edgeface_xs_q.pt`, `edgeface_xxs_q.pt`) hold EdgeNeXt
with every Linear layer dynamically quantised to int8. Dynamic quantisation
picks one activation scale per batch, so the same face embeds differently alone
and in a batch; the float network does not. The conversion therefore writes
each quantised Linear's weight dequantised to float32 (exactly `int8 × scale`,
nothing rounded again) and leaves every other tensor as published, as
safetensors, beside the licences the weights are distributed under and a card
saying where they came from.

The files are checked against the sha256 their README publishes before
anything is read, since `torch.load` of an unknown file is code from elsewhere.
"""

import hashlib
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from app.training.model_card import record_provenance
from app.vision.alignment_template import ARCFACE_112
from app.vision.backbones.edgeface import WEIGHTS_FILE
from app.vision.backbones.edgeface_network import (
    ARCHITECTURES,
    EMBEDDING_DIM,
    build_edgeface_network,
)
from app.vision.backbones.weights import weights_version

PUBLISHED_FILES = {"edgeface-xs": "edgeface_xs_q.pt", "edgeface-xxs": "edgeface_xxs_q.pt"}
LICENCES = ("LICENSE", "LICENSE_INSIGHTFACE")
_PACKED = "._packed_params._packed_params"
_QUANTISATION_ONLY = ("._packed_params.dtype", ".scale", ".zero_point")
_PUBLISHED_ROW = re.compile(r"`(?P<file>[\w.-]+\.pt)`\s*\|[^|]*\|\s*`(?P<sha256>[0-9a-f]{64})`")


class EdgeFaceImportRefused(ValueError):
    """The published files cannot be converted; the message names the file and why."""


@dataclass(frozen=True)
class ImportedModel:
    name: str
    weights: Path
    weights_hash: str


def import_edgeface(source: Path, models_dir: Path) -> list[ImportedModel]:
    """Convert every EdgeFace model in `source` into `models_dir/<name>/`."""
    checksums = published_checksums(source / "README.md")
    for licence in LICENCES:
        if not (source / licence).is_file():
            raise EdgeFaceImportRefused(
                f"{source / licence} is missing: it must go with the weights"
            )
    return [_import_one(name, source, checksums, models_dir) for name in PUBLISHED_FILES]


def published_checksums(readme: Path) -> dict[str, str]:
    """The sha256 of each weights file, from the table of the README shipped with them."""
    try:
        text = readme.read_text("utf-8")
    except OSError as error:
        raise EdgeFaceImportRefused(f"cannot read {readme}: {error}") from None
    return {match["file"]: match["sha256"] for match in _PUBLISHED_ROW.finditer(text)}


def dequantised_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of the float network: quantised Linear layers as float32 weights."""
    with warnings.catch_warnings():  # reading int8 tensors is deprecated: why we convert once
        warnings.simplefilter("ignore", UserWarning)
        published = torch.load(path, map_location="cpu", weights_only=True)
    tensors: dict[str, torch.Tensor] = {}
    for key, value in published.items():
        name = key.removeprefix("model.")
        if name.endswith(_PACKED):
            layer = name.removesuffix(_PACKED)
            weight, bias = value
            tensors[f"{layer}.weight"] = weight.dequantize().contiguous()
            if bias is not None:
                tensors[f"{layer}.bias"] = bias.detach().clone().contiguous()
        elif not name.endswith(_QUANTISATION_ONLY):
            tensors[name] = value.detach().clone().contiguous()
    return tensors


def _import_one(
    name: str, source: Path, checksums: dict[str, str], models_dir: Path
) -> ImportedModel:
    published = source / PUBLISHED_FILES[name]
    sha256 = _checked(published, checksums)
    tensors = dequantised_state_dict(published)
    network = build_edgeface_network(name)
    try:
        network.load_state_dict(tensors)  # strict: every tensor, and only those
    except RuntimeError as error:
        raise EdgeFaceImportRefused(f"{published} is not {ARCHITECTURES[name]}: {error}") from None
    target = models_dir / name
    target.mkdir(parents=True, exist_ok=True)
    weights = target / WEIGHTS_FILE
    save_file(
        dict(sorted(tensors.items())),
        str(weights),
        # One key: safetensors writes its metadata map in no fixed order, and the file must
        # come out byte for byte the same on every run.
        metadata={"source": f"{published.name} sha256:{sha256}"},
    )
    for licence in LICENCES:
        shutil.copyfile(source / licence, target / licence)
    version = weights_version(weights)
    record_provenance(
        models_dir,
        name,
        weights_hash=version,
        embedding_dim=EMBEDDING_DIM,
        alignment=ARCFACE_112.name,
        provenance=_provenance(name, published.name, sha256),
    )
    return ImportedModel(name=name, weights=weights, weights_hash=version)


def _checked(published: Path, checksums: dict[str, str]) -> str:
    expected = checksums.get(published.name)
    if expected is None:
        raise EdgeFaceImportRefused(f"the README beside {published} publishes no sha256 for it")
    try:
        actual = hashlib.sha256(published.read_bytes()).hexdigest()
    except OSError as error:
        raise EdgeFaceImportRefused(f"cannot read {published}: {error}") from None
    if actual != expected:
        raise EdgeFaceImportRefused(
            f"{published} is not the published file: its sha256 is {actual}, "
            f"the README gives {expected}"
        )
    return actual


def _provenance(name: str, published: str, sha256: str) -> dict[str, Any]:
    return {
        "kind": "pretrained",
        "architecture": f"timm {ARCHITECTURES[name]}, classifier replaced by a 512-d head",
        "paper": "A. George, C. Ecabert, H. Otroshi Shahreza, K. Kotwal, S. Marcel, "
        '"EdgeFace: Efficient Face Recognition Model for Edge Devices", IEEE T-BIOM 2024',
        "source": {
            "file": published,
            "sha256": sha256,
            "where": "the official EdgeFace repository (Idiap), mirrored as "
            "yayoimizuha/face_recognition_train, checkpoints/, commit 5eeebb9 (2024-10-04)",
        },
        "conversion": "int8 dynamically quantised Linear layers dequantised to float32 "
        "(int8 × scale, exactly); every other tensor as published",
        "licence": "BSD-3-Clause (Idiap), LICENSE; InsightFace training code MIT, "
        "LICENSE_INSIGHTFACE: both go with the weights",
        "training_data": "WebFace4M/12M, whose terms are for research: check them before "
        "any other use, as with CelebA and dlib's training photos",
        "input": "112×112 RGB, (x / 255 − 0.5) / 0.5, aligned to the ArcFace template",
    }
