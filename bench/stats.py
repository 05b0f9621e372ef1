"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import json
import statistics
from typing import Any


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(samples_ns: list[int]) -> dict[str, float]:
    us = [s / 1000 for s in samples_ns]
    return {
        "median_us": round(statistics.median(us), 2),
        "p99_us": round(percentile(us, 0.99), 2),
        "mean_us": round(statistics.fmean(us), 2),
    }


def emit(result: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object."""
    print(json.dumps(result, sort_keys=True))
