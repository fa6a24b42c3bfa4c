"""Timing loop shared by table building, benches and the prune check.

Warm-up, then repeats until the median is stable (or a time/run cap is hit), then outlier
rejection (median absolute deviation). Standard library only, so the on-device agent can use
the same rules.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Timing:
    """Latency statistics in milliseconds over the kept samples."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    runs: int
    rejected: int

    def to_json(self) -> dict:
        return asdict(self)


def percentile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        raise ValueError("no samples")
    k = (len(sorted_vals) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def summarize(samples_ms: list[float], reject_outliers: bool = True) -> Timing:
    vals = sorted(samples_ms)
    rejected = 0
    if reject_outliers and len(vals) >= 5:
        med = statistics.median(vals)
        mad = statistics.median(abs(v - med) for v in vals) or 1e-9
        kept = [v for v in vals if abs(v - med) <= 5 * 1.4826 * mad]
        rejected = len(vals) - len(kept)
        vals = kept or vals
    return Timing(
        p50_ms=statistics.median(vals),
        p90_ms=percentile(vals, 0.90),
        p99_ms=percentile(vals, 0.99),
        mean_ms=statistics.fmean(vals),
        std_ms=statistics.pstdev(vals) if len(vals) > 1 else 0.0,
        min_ms=vals[0],
        runs=len(vals),
        rejected=rejected,
    )


def measure(fn, *, warmup: int = 3, min_runs: int = 10, max_runs: int = 200, max_seconds: float = 5.0,
            rel_tol: float = 0.01, min_seconds: float = 0.0) -> Timing:
    """Time `fn()` until the running median moves less than `rel_tol` between checks."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    last_median = None
    while True:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
        n = len(samples)
        elapsed = time.perf_counter() - start
        if n >= max_runs or (elapsed > max_seconds and n >= 3):
            break
        if n >= min_runs and elapsed >= min_seconds and n % max(min_runs // 2, 1) == 0:
            med = statistics.median(samples)
            if last_median is not None and abs(med - last_median) <= rel_tol * last_median:
                break
            last_median = med
    return summarize(samples)
