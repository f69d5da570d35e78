"""Benchmark `lineup enroll`'s throughput on real photos, and the cost of re-running it.

Run with `uv run python benchmarks/enroll_throughput.py [--celeba-identities 10]`
(set LINEUP_MATCH_THRESHOLD until the model card has a calibrated threshold).

The tree is all of lfw_mini (12 people × 5, 250×250 news photos) plus the first
identities of celeba_split.json's `val` part (in-the-wild photos, long side
≤ 360 px), linked into a temporary folder per subject. It is enrolled through
the same code as `lineup enroll` (`app.gallery.bulk_enroll.enroll_tree`) into a
fresh gallery; photos/s excludes loading the model, which is timed apart. The
same tree is then enrolled again: every photo is a duplicate, as after an
interrupted run, and costs a hash instead of a model pass.
"""

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

from app.config import Settings
from app.gallery.bulk_enroll import EnrollmentTally, enroll_tree, find_subject_folders
from app.gallery.enroll import FacePolicy
from app.gallery.service import Gallery
from app.gallery.startup import build_embedder, open_gallery
from app.vision.device import resolve_device

logger = logging.getLogger("benchmarks.enroll_throughput")

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "faces"


def link_tree(tree: Path, *, celeba_identities: int) -> None:
    """One folder of symlinks per subject: lfw_mini people, then celeba `val` identities."""
    sources = sorted(path for path in (FACES / "lfw_mini").iterdir() if path.is_dir())
    split = json.loads((FACES / "celeba_split.json").read_text())
    sources += [FACES / "celeba" / name for name in sorted(split["val"])[:celeba_identities]]
    for source in sources:
        prefix = "celeba_" if source.parent.name == "celeba" else ""
        folder = tree / f"{prefix}{source.name}"
        folder.mkdir()
        for photo in sorted(source.glob("*.jpg")):
            (folder / photo.name).symlink_to(photo)


def timed_enrollment(gallery: Gallery, tree: Path, *, policy: FacePolicy) -> EnrollmentTally:
    """Enroll the tree as `lineup enroll` does; log counts and photos/s."""
    folders = find_subject_folders(tree)
    tally = EnrollmentTally()
    start = time.perf_counter()
    enroll_tree(gallery, folders, policy=policy, create=True, tally=tally)
    elapsed = time.perf_counter() - start
    logger.info(
        "  %d photos of %d subjects in %.1f s = %.2f photos/s (%.0f ms/photo)",
        tally.photos,
        len(folders),
        elapsed,
        tally.photos / elapsed,
        1e3 * elapsed / tally.photos,
    )
    refused = ", ".join(f"{reason} {count}" for reason, count in sorted(tally.refused.items()))
    logger.info(
        "  enrolled %d, duplicate %d, refused %d (%s)",
        tally.enrolled,
        tally.duplicate,
        tally.refused.total(),
        refused or "none",
    )
    return tally


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--celeba-identities", type=int, default=10, help="from the val part")
    parser.add_argument("--face", choices=("single", "largest"), default="largest")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    """Describe the machine, link the tree, load the model, enroll twice."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lineup-enroll-bench-") as work:
        tree, data_dir = Path(work) / "tree", Path(work) / "data"
        tree.mkdir()
        link_tree(tree, celeba_identities=args.celeba_identities)
        settings = Settings(data_dir=data_dir, models_dir=ROOT / "models", device=args.device)
        logger.info("%s", describe())
        logger.info("device     %s (LINEUP_DEVICE=%s)", resolve_device(args.device), args.device)
        start = time.perf_counter()
        embedder = build_embedder(settings)
        gallery = open_gallery(settings, embedder=embedder)
        logger.info(
            "model load and gallery open: %.2f s (not counted)", time.perf_counter() - start
        )
        logger.info("first run, --face %s, empty gallery:", args.face)
        timed_enrollment(gallery, tree, policy=args.face)
        logger.info("second run, same tree (every photo already enrolled or refused):")
        timed_enrollment(gallery, tree, policy=args.face)
        gallery.close()


if __name__ == "__main__":
    main(sys.argv[1:])
