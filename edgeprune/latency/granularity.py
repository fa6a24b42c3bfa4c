"""The channel grid of a table, found on the device: the width below which narrowing a layer stops paying.

Runtimes compute channels in blocks: ONNX Runtime's NCHWc convolutions use blocks of 16 floats on
an AVX-512 CPU and 8 on AVX2; XNNPACK and GPU kernels have tiles of their own. Below one block a
narrower layer is not faster, and in a graph it can be much slower: on an AVX-512 host a
MobileNetV2 with its narrowest layers at 8 channels ran at 2.25x the unpruned model's speed, and
the same network with those layers at 16 at 3.21x (8-channel layers leave the blocked layout, and
the runtime reorders tensors around them). A grid of 8 there makes the pruner pay accuracy for
latency it does not get. So the grid is probed, not assumed: chains of 1x1 convolutions at widths
4..64, timed in rounds through the device's own runner, and the grid is the narrowest width that is
still clearly cheaper than twice its width.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

CANDIDATES = (4, 8, 16, 32)  # possible grids; each is compared with twice its width
MIN_SAVING = 0.10             # halving the width must save at least this much to count as a step
HW = 56                       # spatial size of the probe: compute, not per-call cost, must dominate
DEPTH = 4                     # 1x1 convolutions in a chain (blocked layouts show between layers)
ROUNDS = 3                    # every probe timed in each round; a probe's latency is its fastest round


def probe_module(width: int):
    import torch.nn as nn

    layers = []
    for _ in range(DEPTH):
        layers += [nn.Conv2d(width, width, 1), nn.ReLU()]
    return nn.Sequential(*layers).eval()


def step_from_timings(ms: dict[int, float], min_saving: float = MIN_SAVING) -> int:
    """The grid given each width's latency: walk down from the widest pair and stop at the first
    halving that does not save `min_saving`."""
    grid = max(CANDIDATES)
    for w in sorted(CANDIDATES, reverse=True):
        if ms[w] <= ms[2 * w] * (1 - min_saving):
            grid = w
        else:
            break
    return grid


def probe_granularity(runner, runtime: str, precision: str, threads: int | None) -> tuple[int, dict[int, float]]:
    """(grid, {width: ms}) measured on the runner's device."""
    from edgeprune.devices.runner import BenchSettings
    from edgeprune.latency.builder import MICRO_SETTINGS, latency_of
    from edgeprune.latency.measure import export_for_runtime
    from edgeprune.models.inputs import InputSpec

    widths = sorted(set(CANDIDATES) | {2 * w for w in CANDIDATES})
    settings = BenchSettings(threads=threads, **MICRO_SETTINGS)
    best = {w: float("inf") for w in widths}
    with tempfile.TemporaryDirectory(prefix="edgeprune-grid-") as tmp:
        paths = {w: export_for_runtime(probe_module(w), (InputSpec((1, w, HW, HW)),), runtime, precision,
                                       Path(tmp) / f"chain{w}") for w in widths}
        for _ in range(ROUNDS):
            for w in widths:
                best[w] = min(best[w], latency_of(runner.bench(paths[w], runtime, settings).timing))
    ms = {w: round(v, 6) for w, v in best.items()}
    return step_from_timings(ms), ms
