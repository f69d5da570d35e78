"""Face detection speed: facenet-pytorch's `MTCNN.detect` against Lineup's `MtcnnCascade`.

Run: `uv run python benchmarks/detection.py [--repeats N] [--threads N]`.

Photos are lfw_mini's sixty 250×250 photos and the three multi_face group
photos, each as it is ("plain") and framed in the grey border `MtcnnDetector`
adds ("padded": a quarter of the longer side on every side, so 374×374 for
an lfw photo). Each call detects the faces of one photo, landmarks included.

The machine is shared, so the detectors take turns call by call (a burst of
someone else's work slows all of them alike), each photo's time is the median
of its repeats, and lfw_mini's p50/p95 are over its photos' medians. The
cascade plans its pyramid once per image size; "cascade, new size" empties
that cache before every call, which is what a photo of a size not seen
before costs. The load average is printed before and after.
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import MTCNN
from machine import Latency, describe
from PIL import Image, ImageOps

from app.vision.mtcnn import MtcnnCascade, pyramid_plan

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
GREY = (128, 128, 128)
Detect = Callable[[Image.Image], int]


def padded(image: Image.Image) -> Image.Image:
    """`image` framed as `MtcnnDetector` frames it."""
    return ImageOps.expand(image, border=round(0.25 * max(image.size)), fill=GREY)


def detectors(device: torch.device) -> dict[str, Detect]:
    """Each detector as a function from a photo to its number of faces."""
    reference = MTCNN(keep_all=True, select_largest=False, device=device).eval()
    cascade = MtcnnCascade(device=device)

    def facenet(image: Image.Image) -> int:
        with torch.inference_mode():
            boxes, _, _ = reference.detect(image, landmarks=True)
        return 0 if boxes is None else len(boxes)

    def new_size(image: Image.Image) -> int:
        pyramid_plan.cache_clear()
        return len(cascade.detect(image))

    return {
        "facenet-pytorch MTCNN": facenet,
        "cascade": lambda image: len(cascade.detect(image)),
        "cascade, new size": new_size,
    }


def time_photo(
    detect: dict[str, Detect], image: Image.Image, repeats: int
) -> dict[str, list[float]]:
    """Seconds per call for each detector on `image`, the detectors taking turns."""
    for run in detect.values():
        run(image)  # warm-up: first calls allocate and pick kernels
    timings: dict[str, list[float]] = {name: [] for name in detect}
    for _ in range(repeats):
        for name, run in detect.items():
            start = time.perf_counter()
            run(image)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            timings[name].append(time.perf_counter() - start)
    return timings


def report_lfw(detect: dict[str, Detect], photos: list[Image.Image], repeats: int) -> None:
    """p50/p95 over lfw_mini's photos of each photo's median time, plain and padded."""
    for framing in ("plain", "padded"):
        images = photos if framing == "plain" else [padded(photo) for photo in photos]
        medians: dict[str, list[float]] = {name: [] for name in detect}
        for image in images:
            for name, seconds in time_photo(detect, image, repeats).items():
                medians[name].append(statistics.median(seconds))
        size = f"{images[0].width}×{images[0].height}"
        for name, seconds in medians.items():
            print(f"lfw_mini {framing:6s} {size:9s} {name:22s} {Latency.of(seconds)}")
        speedup = np.median(medians["facenet-pytorch MTCNN"]) / np.median(medians["cascade"])
        print(f"lfw_mini {framing:6s} cascade p50 speed-up ×{speedup:.2f}\n")


def report_groups(detect: dict[str, Detect], photos: dict[str, Image.Image], repeats: int) -> None:
    """p50/p95 over repeats for each group photo, plain and padded."""
    for name, photo in photos.items():
        for framing in ("plain", "padded"):
            image = photo if framing == "plain" else padded(photo)
            faces = {detector: run(image) for detector, run in detect.items()}
            timings = time_photo(detect, image, repeats)
            for detector, seconds in timings.items():
                label = f"{name} {framing:6s} {image.width}×{image.height}"
                print(f"{label:38s} {detector:22s} {faces[detector]} faces  {Latency.of(seconds)}")
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=7, help="calls per photo and detector")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(describe())
    print(f"facenet-pytorch {version('facenet-pytorch')}   torchvision {version('torchvision')}")
    print(f"device     {args.device}, {args.repeats} repeats per photo\n")

    detect = detectors(torch.device(args.device))
    lfw = [Image.open(path).convert("RGB") for path in sorted(FACES.glob("lfw_mini/*/*.jpg"))]
    groups = {p.stem: Image.open(p).convert("RGB") for p in sorted(FACES.glob("multi_face/*.jpg"))}
    report_lfw(detect, lfw, args.repeats)
    report_groups(detect, groups, args.repeats)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load avg   {load} (1, 5, 15 min) at the end")


if __name__ == "__main__":
    main()
