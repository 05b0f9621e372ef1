"""What every benchmark shares: the interleaved timing loop, summaries and ratios, and the
JSON last line.

The calls compared run in turn within each round, and each round starts one further along
the list: load drifting on a noisy machine then hits every side alike, and none is always
measured right after another (whose caches it would find warm).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
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


def report(samples: Mapping[str, list[int]]) -> dict[str, dict[str, float]]:
    return {name: summary(values) for name, values in samples.items()}


def ratio(ours: list[int], baseline: list[int], digits: int = 3) -> float:
    """Median over median: what to compare across runs."""
    return round(statistics.median(ours) / statistics.median(baseline), digits)


def rotations(names: list[str], rounds: int) -> Iterator[tuple[int, list[str]]]:
    """(round, the order of its calls), each round starting one further along."""
    for i in range(rounds):
        turn = i % len(names)
        yield i, names[turn:] + names[:turn]


def interleave(
    calls: Mapping[str, Callable[[], object]], n: int, warm_up: int = 0
) -> dict[str, list[int]]:
    """Each call's time in ns over ``n`` rounds, after ``warm_up`` rounds not kept."""
    samples: dict[str, list[int]] = {name: [] for name in calls}
    clock = time.perf_counter_ns
    for i, order in rotations(list(calls), n + warm_up):
        for name in order:
            started = clock()
            calls[name]()
            elapsed = clock() - started
            if i >= warm_up:
                samples[name].append(elapsed)
    return samples


async def interleaved(
    calls: Mapping[str, Callable[[], Awaitable[int]]], n: int, warm_up: int = 0
) -> dict[str, list[int]]:
    """:func:`interleave` for coroutines that time themselves (they return the ns of what
    they measure, leaving out their own preparation)."""
    samples: dict[str, list[int]] = {name: [] for name in calls}
    for i, order in rotations(list(calls), n + warm_up):
        for name in order:
            elapsed = await calls[name]()
            if i >= warm_up:
                samples[name].append(elapsed)
    return samples


def emit(result: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object."""
    print(json.dumps(result, sort_keys=True))
