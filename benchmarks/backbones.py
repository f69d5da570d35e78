"""Embedding speed of every offline backbone, side by side in one run: ms per face.

Run: `uv run python benchmarks/backbones.py [--device cpu|cuda] [--rounds N]`.
Chips are cut from lfw_mini's first photos on each backbone's own template;
the backbones take turns, round after round, so a change in the machine's
load falls on all of them alike. EdgeFace is timed in float32 (the CPU
default) and in bfloat16 (offered), or float16 on CUDA (the default there).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from machine import Latency, describe

from app.vision.backbones.base import Backbone
from app.vision.backbones.edgeface import EdgeFaceBackbone
from app.vision.backbones.registry import create_backbone
from app.vision.detection import MtcnnDetector
from app.vision.embedder import FaceEmbedder
from app.vision.images import decode_image

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "faces"
BATCH = 32


def contenders(device: torch.device) -> dict[str, Backbone]:
    models = ROOT / "models"
    reduced = "float16" if device.type == "cuda" else "bfloat16"
    found: dict[str, Backbone] = {"dlib-resnet": create_backbone("dlib-resnet", device=device)}
    for name in ("edgeface-xs", "edgeface-xxs"):
        found[f"{name} float32"] = EdgeFaceBackbone(
            name=name, device=device, models_dir=models, precision="float32"
        )
        found[f"{name} {reduced}"] = EdgeFaceBackbone(
            name=name, device=device, models_dir=models, precision=reduced
        )
    return found


def batch_of_chips(backbone: Backbone, detector: MtcnnDetector) -> np.ndarray:
    embedder = FaceEmbedder(detector=detector, backbone=backbone)
    photos = [decode_image(p.read_bytes()) for p in sorted(FACES.glob("lfw_mini/*/*_0001.jpg"))]
    chips = [embedder.align(photo, embedder.detect(photo)[0]) for photo in photos]
    return np.stack((chips * (BATCH // len(chips) + 1))[:BATCH])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(describe())
    print(f"device     {device}, batch {BATCH}\n")
    detector = MtcnnDetector(device=device)
    backbones = contenders(device)
    chips = {label: batch_of_chips(backbone, detector) for label, backbone in backbones.items()}
    timings: dict[str, list[float]] = {label: [] for label in backbones}
    for label, backbone in backbones.items():  # warm-up: kernels chosen, memory allocated
        backbone.embed(chips[label])
    for _ in range(args.rounds):
        for label, backbone in backbones.items():
            start = time.perf_counter()
            backbone.embed(chips[label])
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings[label].append((time.perf_counter() - start) / BATCH)
    for label, per_face in timings.items():
        print(f"{label:24s} per face  {Latency.of(per_face)}")


if __name__ == "__main__":
    main()
