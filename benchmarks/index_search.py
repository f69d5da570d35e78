"""Benchmark FaissIndex: single-query search latency and add throughput.

Run with `uv run python benchmarks/index_search.py`. Vectors are random unit
vectors (the index cannot tell them from embeddings: flat search costs the
same whatever the data). Latency is per `search` call with one query,
measured with FAISS's default OpenMP threads and with one thread, since a
server answering probes from a thread pool may prefer the latter.
"""

import argparse
import logging
import sys
import time

import faiss
import numpy as np
from machine import Latency, describe
from numpy.typing import NDArray

from app.index import FaissIndex

logger = logging.getLogger("benchmarks.index_search")


def describe_machine() -> None:
    """Log what the figures were measured on."""
    for line in describe().splitlines():
        logger.info("%s", line)
    logger.info("faiss      OpenMP threads: %d", faiss.omp_get_max_threads())


def unit_vectors(rng: np.random.Generator, count: int, dim: int) -> NDArray[np.float32]:
    """Random float32 rows of unit length."""
    raw = rng.standard_normal((count, dim), dtype=np.float32)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    return np.asarray(raw / norms, dtype=np.float32)


def time_search(
    index: FaissIndex, queries: NDArray[np.float32], *, k: int, warmup: int = 20
) -> Latency:
    """Time one `search` call per query row."""
    for row in range(min(warmup, len(queries))):
        index.search(queries[row : row + 1], k)
    timings = []
    for row in range(len(queries)):
        start = time.perf_counter()
        index.search(queries[row : row + 1], k)
        timings.append(time.perf_counter() - start)
    return Latency.of(timings)


def time_single_adds(index: FaissIndex, vectors: NDArray[np.float32], *, first_id: int) -> Latency:
    """Time adding faces one call each, as enrollment does."""
    timings = []
    for offset in range(len(vectors)):
        start = time.perf_counter()
        index.add([first_id + offset], vectors[offset : offset + 1])
        timings.append(time.perf_counter() - start)
    return Latency.of(timings)


def bench_size(rng: np.random.Generator, *, size: int, dim: int, k: int, repeats: int) -> None:
    """Log add throughput and search latency for a gallery of `size` faces."""
    vectors = unit_vectors(rng, size, dim)
    index = FaissIndex(dim)
    start = time.perf_counter()
    index.add(np.arange(size), vectors)
    elapsed = time.perf_counter() - start
    logger.info(
        "N=%-7d add batch of %d: %.3f s = %.0f vectors/s", size, size, elapsed, size / elapsed
    )
    logger.info(
        "N=%-7d add one at a time (200 calls):      %s",
        size,
        time_single_adds(index, unit_vectors(rng, 200, dim), first_id=size),
    )
    queries = unit_vectors(rng, repeats, dim)
    default_threads = faiss.omp_get_max_threads()
    logger.info(
        "N=%-7d search 1 query k=%d, %d OpenMP threads: %s",
        size,
        k,
        default_threads,
        time_search(index, queries, k=k),
    )
    faiss.omp_set_num_threads(1)
    try:
        logger.info(
            "N=%-7d search 1 query k=%d, 1 OpenMP thread:  %s",
            size,
            k,
            time_search(index, queries, k=k),
        )
    finally:
        faiss.omp_set_num_threads(default_threads)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1_000, help="queries timed per size")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    """Describe the machine, then benchmark each gallery size."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    args = parse_args(argv)
    describe_machine()
    logger.info(
        "dim %d, random unit vectors, exact inner product (IndexIDMap2 + IndexFlatIP)", args.dim
    )
    rng = np.random.default_rng(args.seed)
    for size in args.sizes:
        bench_size(rng, size=size, dim=args.dim, k=args.k, repeats=args.repeats)


if __name__ == "__main__":
    main(sys.argv[1:])
