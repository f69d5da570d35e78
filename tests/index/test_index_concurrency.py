"""Searches from many threads, alone and alongside mutations."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.index import FaissIndex
from app.index.rwlock import ReadWriteLock

DIM = 64
THREADS = 8


def test_parallel_searches_match_sequential_ones(unit_vectors) -> None:
    index = FaissIndex(DIM)
    index.add(np.arange(2_000), unit_vectors(2_000, DIM))
    queries = [unit_vectors(3, DIM) for _ in range(32)]
    expected = [index.search(batch, 10) for batch in queries]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for _ in range(2):
            assert list(pool.map(lambda batch: index.search(batch, 10), queries)) == expected


def test_searches_during_mutation_see_whole_batches(unit_vectors) -> None:
    """A search sees every face of an added batch or none, never a torn state."""
    index = FaissIndex(DIM)
    batch = 50
    vectors = unit_vectors(batch * 40, DIM)
    index.add(np.arange(batch), vectors[:batch])
    stop = threading.Event()
    seen_sizes: set[int] = set()

    def search_loop() -> None:
        while not stop.is_set():
            hits = index.search(vectors[:1], len(vectors))[0]
            seen_sizes.add(len(hits))

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        searchers = [pool.submit(search_loop) for _ in range(THREADS - 1)]
        for start in range(batch, len(vectors), batch):
            index.add(np.arange(start, start + batch), vectors[start : start + batch])
            if start % (batch * 4) == 0:
                assert index.remove(np.arange(start, start + batch)) == batch
                index.add(np.arange(start, start + batch), vectors[start : start + batch])
        stop.set()
        for searcher in searchers:
            searcher.result()

    assert len(index) == len(vectors)
    assert all(size % batch == 0 for size in seen_sizes)


def test_writer_waits_for_readers_and_blocks_new_ones() -> None:
    lock = ReadWriteLock()
    events: list[str] = []
    reader_in = threading.Event()
    release_reader = threading.Event()

    def reader() -> None:
        with lock.read():
            reader_in.set()
            release_reader.wait()
            events.append("first reader out")

    def writer() -> None:
        with lock.write():
            events.append("writer")

    def late_reader() -> None:
        with lock.read():
            events.append("late reader")

    threads = [threading.Thread(target=reader)]
    threads[0].start()
    reader_in.wait()
    threads.append(threading.Thread(target=writer))
    threads[1].start()
    deadline = time.monotonic() + 5
    while not lock._writers_waiting and time.monotonic() < deadline:
        time.sleep(0.001)  # until the writer queues up behind the first reader
    threads.append(threading.Thread(target=late_reader))
    threads[2].start()
    time.sleep(0.05)
    assert events == []
    release_reader.set()
    for thread in threads:
        thread.join(timeout=5)
    assert events == ["first reader out", "writer", "late reader"]
