"""What every benchmark prints first: the machine it ran on, and timing summaries.

Imported by the scripts beside it (`uv run python benchmarks/<name>.py`).
"""

import os
import platform
import sys
from dataclasses import dataclass

import faiss
import numpy as np
import torch


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """A few lines naming the machine, its load and the library versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return "\n".join(
        [
            f"cpu        {cpu_model()}",
            f"cores      {os.cpu_count()} logical, {usable} usable, "
            f"torch threads {torch.get_num_threads()}",
            f"gpu        {gpu}",
            f"load avg   {load} (1, 5, 15 min)",
            f"python     {sys.version.split()[0]} on {platform.platform()}",
            f"torch      {torch.__version__}   faiss {faiss.__version__}   numpy {np.__version__}",
        ]
    )


@dataclass(frozen=True)
class Latency:
    """Percentiles of repeated timings, in milliseconds."""

    p50_ms: float
    p95_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> "Latency":
        millis = np.asarray(seconds) * 1e3
        return cls(
            p50_ms=float(np.percentile(millis, 50)),
            p95_ms=float(np.percentile(millis, 95)),
            mean_ms=float(millis.mean()),
        )

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:8.2f} ms  p95 {self.p95_ms:8.2f} ms  mean {self.mean_ms:8.2f} ms"
