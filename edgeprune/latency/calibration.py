"""From a table's kernel sum to the model's end-to-end latency: the per-model calibration.

Micro-kernels timed alone do not add up to the model timed whole (per-call work each micro-model
pays once, layout changes between kernels, caches), so every model's record keeps the end-to-end
timings of the model and a few pruned variants of it, with their raw kernel sums, and the
predictor maps a plan's kernel sum s to latency through them:

    latency(s) = overhead(s) + scale(s) * s

One straight line through all the calibration models cannot follow both mild and heavy prunes:
fitted with the variant pruned 50-80% per group that 2-3x plans need, the line missed the mild
ones (bench/results/predictor_fidelity.md: ONNX Runtime 73% -> 60% of variants within +-10%).
So each s gets its own least-squares line, with the calibration models weighted by how close
their kernel sums are to s (Gaussian in log sum, `BANDWIDTH`): near the model it is the mild
variants' line, near a 3x prune the heavy one's. The curve is tabulated once per model and read
as non-decreasing, so pruning more never predicts slower and the pruning solvers' gradients
are the curve's own slope.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SCALE_RANGE = (0.25, 4.0)  # a fit outside these bounds is a broken table, not a model
BANDWIDTH = 0.35  # of the locally weighted fit, in log kernel sum (ln 2 = 0.69: half the sum weighs exp(-2))
MIN_LOCAL_POINTS = 3  # the model and at least two variants; fewer give the global line
_GRID = 256


def fit_calibration(sums: Sequence[float], measured: Sequence[float],
                    weights: Sequence[float] | None = None) -> tuple[float, float]:
    """(overhead, scale) minimizing the relative error of overhead + scale * sum over the points,
    each point's squared error times its weight (default: all 1).

    Scale is kept in SCALE_RANGE; points whose kernel sums barely differ give an overhead only. The
    range was [0.5, 2] and 28x28 models hit its floor: their micro-kernels sum to about 2.2x the
    model (per-call work each micro-model pays once), and a clamped scale pushed the overhead
    negative, which over-predicted every narrow plan's speedup (bench/results/prune_pareto.md).
    """
    s, t = np.asarray(sums, float), np.asarray(measured, float)
    if len(s) < 2 or (s.max() - s.min()) < 0.05 * s.max():
        return float(t[0] - s[0]), 1.0
    r = np.ones_like(t) if weights is None else np.sqrt(np.asarray(weights, float))
    w = r / t
    x = np.stack([w, w * s], axis=1)  # rows: (1, s) / t  vs  t / t = 1, each row times sqrt(weight)
    overhead, scale = np.linalg.lstsq(x, r, rcond=None)[0]
    lo, hi = SCALE_RANGE
    if not lo <= scale <= hi:
        scale = float(min(max(scale, lo), hi))
        overhead = float(np.sum(w * w * (t - scale * s)) / np.sum(w * w))
    return float(overhead), float(scale)


def local_fit(sums: Sequence[float], measured: Sequence[float], s: float,
              h: float = BANDWIDTH) -> tuple[float, float]:
    """(overhead, scale) of the line for a plan whose raw kernel sum is `s`: `fit_calibration` with
    each calibration model weighted exp(-ln(s_i / s)^2 / 2h^2); the global line where fewer than
    two calibration models are near `s`."""
    k = np.exp(-np.log(np.asarray(sums, float) / s) ** 2 / (2 * h * h))
    if len(k) < 2 or np.sort(k)[-2] < 1e-3:
        return fit_calibration(sums, measured)
    return fit_calibration(sums, measured, weights=k)


class CalibrationCurve:
    """latency(s) for one model: the locally weighted lines, tabulated on a log grid spanning the
    calibration models' kernel sums and made non-decreasing. Beyond them (a plan narrower than the
    heavy variant) it extends the line of the nearer end: far from every calibration model the
    weights vanish, and falling back to the global line there put a step into the curve."""

    def __init__(self, sums: Sequence[float], measured: Sequence[float], h: float = BANDWIDTH):
        s = np.asarray(sums, float)
        self.grid = np.geomspace(s.min(), max(s.max(), 1.05 * s.min()), _GRID)
        lines = np.array([local_fit(s, measured, g, h) for g in self.grid])
        self.overhead, self.scale = lines[:, 0], lines[:, 1]
        self.latency = np.maximum.accumulate(self.overhead + self.scale * self.grid)

    @classmethod
    def from_record(cls, record: dict | None) -> "CalibrationCurve | None":
        """The curve of a table's model record, or None where it has too few calibration models."""
        cal = (record or {}).get("calibration") or {}
        sums, measured = cal.get("kernel_sum_ms") or [], cal.get("measured_ms") or []
        n = min(len(sums), len(measured))
        if n < MIN_LOCAL_POINTS or min(sums[:n]) <= 0 or min(measured[:n]) <= 0:
            return None
        return cls(sums[:n], measured[:n])

    def __call__(self, s: float) -> tuple[float, float]:
        """(latency, slope d latency / d s) at kernel sum `s`."""
        g = self.grid
        if s <= g[0] or s >= g[-1]:
            end = 0 if s <= g[0] else -1
            k = self.scale[end]
            return float(self.latency[end] + k * (s - g[end])), float(k)
        j = int(np.searchsorted(g, s)) - 1
        slope = (self.latency[j + 1] - self.latency[j]) / (g[j + 1] - g[j])
        return float(self.latency[j] + slope * (s - g[j])), float(slope)

    def line_at(self, s: float) -> tuple[float, float]:
        """(overhead, scale) of the local line at `s`: what a per-kernel breakdown multiplies by."""
        scale = float(np.interp(s, self.grid, self.scale))
        return self(s)[0] - scale * s, scale
