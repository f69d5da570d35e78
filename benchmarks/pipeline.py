"""Face pipeline speed: detection, alignment and embedding per photo, and faces/s.

Run: `uv run python benchmarks/pipeline.py [--device cpu|cuda] [--repeats N]`.
Photos are lfw_mini's 250×250 news photos (one main face each) and the
multi_face group photos. Embedding is timed on aligned chips at batch 1 and
batch 32, which is how enrollment of many photos batches its faces.
"""

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from machine import Latency, describe

from app.vision.backbones.registry import create_backbone
from app.vision.detection import MtcnnDetector
from app.vision.embedder import FaceEmbedder
from app.vision.images import decode_image

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


def timed(action: Callable[[], object], repeats: int) -> list[float]:
    action()  # warm-up: first calls allocate and pick kernels
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(describe())
    print(f"device     {device}\n")

    embedder = FaceEmbedder(
        detector=MtcnnDetector(device=device),
        backbone=create_backbone("dlib-resnet", device=device),
    )
    lfw = [decode_image(p.read_bytes()) for p in sorted(FACES.glob("lfw_mini/*/*_0001.jpg"))]
    groups = [decode_image(p.read_bytes()) for p in sorted(FACES.glob("multi_face/*.jpg"))]

    detect_lfw = timed(lambda: [embedder.detect(image) for image in lfw], args.repeats // 5 or 1)
    per_photo = [t / len(lfw) for t in detect_lfw]
    print(f"detect, 250×250 photo        {Latency.of(per_photo)}")
    for image in groups:
        found = embedder.detect(image)
        timing = Latency.of(timed(lambda image=image: embedder.detect(image), 5))
        print(f"detect, {image.width}×{image.height} ({len(found)} faces)  {timing}")

    image = lfw[0]
    detection = embedder.detect(image)[0]
    aligning = Latency.of(timed(lambda: embedder.align(image, detection), 200))
    print(f"align one face               {aligning}")

    chips = np.stack([embedder.align(im, embedder.detect(im)[0]) for im in lfw])
    batch32 = np.concatenate([chips] * 3)[:32]
    one = Latency.of(timed(lambda: embedder.backbone.embed(chips[:1]), args.repeats * 3))
    many = Latency.of(timed(lambda: embedder.backbone.embed(batch32), args.repeats))
    print(f"embed, batch 1 (per face)    {one}")
    print(
        f"embed, batch 32 (per face)   p50 {many.p50_ms / 32:8.2f} ms  "
        f"p95 {many.p95_ms / 32:8.2f} ms  mean {many.mean_ms / 32:8.2f} ms"
    )

    whole = timed(lambda: embedder.embed_images(lfw), 3)
    faces = sum(len(found) for found in embedder.embed_images(lfw))
    print(
        f"\nwhole pipeline: {len(lfw)} photos, {faces} faces in {min(whole):.2f} s "
        f"= {faces / min(whole):.1f} faces/s, {len(lfw) / min(whole):.1f} photos/s"
    )


if __name__ == "__main__":
    main()
