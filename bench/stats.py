"""Summaries of measured samples: percentiles, medians of trials, rates. Pure, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(samples: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100), linearly interpolated between the closest ranks.

    Interpolating (NumPy's default "linear" method) keeps p99 meaningful for a few hundred samples, where the
    nearest-rank method would simply return the maximum.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("percentile of no samples")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(samples: Iterable[float]) -> float:
    return percentile(samples, 50)


def rate(count: int, seconds: float) -> float:
    """Items per second; zero when nothing was timed rather than a division error."""
    return count / seconds if seconds > 0 else 0.0


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds of latencies given in seconds."""
    ms = [x * 1000 for x in latencies_s]
    return {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms), "n": len(ms)}


def median_of_trials(trials: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each figure's median across repeated trials (figures missing from a trial are left out of it)."""
    if not trials:
        raise ValueError("no trials")
    keys = dict.fromkeys(k for trial in trials for k in trial)
    return {k: median(t[k] for t in trials if k in t) for k in keys}


def ratio(measured: float, baseline: float) -> float | None:
    """measured / baseline, or None when the baseline is zero (nothing to compare with)."""
    return measured / baseline if baseline else None
