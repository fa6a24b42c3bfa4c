"""What cutting a group costs the model, measured: the knapsack's value from the model's own outputs.

The importance-share value (importance.group_values) says how much of a group's channel importance
k channels keep, and compares groups by that share. It cannot see that a 16-wide residual stream
cut to 8 hurts far more than a 256-wide expansion cut to 128, or what a head is worth against
MLP channels: the shares of different groups are not in one unit. Here each group alone is cut to
each candidate count (its least important channels masked, every other group as it is now) and
the model's output on calibration batches is compared with the unpruned model's:

    value(g, k) = -(KL(teacher || model with g cut to k) - KL(teacher || model as it is))

so every group's value is in the same unit (the divergence a cut adds), and the knapsack keeps the
plan of least summed divergence within the budget. The sum treats the cuts as independent, which
they are not; the iterative schedule measures again after each step, around the plan it reached.
Cost: one forward pass per calibration batch per measured count. A group with more than `probes`
candidate counts below its current width (a wide layer on a fine grid: 2048 channels in steps of 32
are 63 counts) is measured at `probes` of them, evenly spread from the narrowest to the widest, and
the divergence of the counts between is interpolated linearly (the current width adds nothing).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

VALUES = ("importance", "sensitivity")
TIE_BREAK = 1e-4
PROBES = 32  # counts measured per group at most: every benchmark group (at most 24 counts, a ViT MLP) is measured whole;
# a cap of 8 on the ViT kept 1.25x and 1.5x within the seeds' spread, but one 2x seed lost 8.4 points
# (bench/results/prune_vit.md, probes8), so the default caps only layers wider than any measured here


def measure_sensitivity(module, dg, groups, batches: Sequence, teacher, current: dict[str, int] | None = None,
                        progress: str | None = None, probes: int | None = PROBES) -> int:
    """Set `values` (one per candidate count, ascending) on every group from the measured divergence.

    `current` is each group's kept count now (masked channels score zero, so they are the first cut); a
    count at or above it changes nothing and keeps the current value (0). Values never fall as k grows, and
    importance shares break ties between counts that measure the same. Returns the number of counts measured.
    """
    import torch

    from edgeprune.pruning.gates import ChannelGates
    from edgeprune.pruning.importance import group_values, removed_channels
    from edgeprune.progress import track

    inputs = [b[0] if isinstance(b, (tuple, list)) else b for b in batches]
    was = module.training
    module.eval()
    with torch.no_grad():
        targets = [torch.log_softmax(teacher(x).float(), -1) for x in inputs]
        probe = ChannelGates(module, dg, groups, soft=False)
        try:
            def divergence() -> float:
                total = 0.0
                for x, t in zip(inputs, targets):
                    out = torch.log_softmax(module(x).float(), -1)
                    total += float(torch.nn.functional.kl_div(out, t, log_target=True, reduction="batchmean"))
                return total / max(len(inputs), 1)

            base = divergence()
            now = {g.root: (current or {}).get(g.root, g.channels) for g in groups}
            jobs = [(g, k) for g in groups for k in probe_counts([k for k in g.counts if k < now[g.root]], probes)]
            loss: dict[str, dict[int, float]] = {g.root: {} for g in groups}  # group -> measured count -> divergence
            for g, k in track(jobs, progress or "sensitivity", total=len(jobs)):
                mask = torch.ones(g.channels)
                mask[torch.as_tensor(removed_channels(g, k), dtype=torch.long)] = 0.0
                probe.masks[g.root] = mask
                loss[g.root][k] = divergence() - base
                probe.masks[g.root] = torch.ones(g.channels)
        finally:
            probe.remove()
    module.train(was)
    measured = {g.root: np.maximum.accumulate(-_interpolated(g.counts, loss[g.root], now[g.root]))
                for g in groups}  # a wider group never measures worse (noise would say it does)
    # cuts that measure (nearly) free would all tie, and a solver indifferent between keeping and cutting leaves
    # budget unused (a ResNet plan kept well under its budget and landed faster than asked): the importance share and the kept fraction break the
    # tie (the share alone ties too where Taylor scores are zero), at TIE_BREAK of the largest divergence measured,
    # far below any difference the measurement resolves
    scale = TIE_BREAK * max([float(-v.min()) for v in measured.values()] + [1e-12])
    for g in groups:
        tie = np.array(g.counts, dtype=float) / g.channels
        if g.importance is not None:
            tie += np.array(group_values(g.importance, g.counts))
        g.values = list(measured[g.root] + scale * tie)
    return len(jobs)


def probe_counts(counts: Sequence[int], probes: int | None) -> list[int]:
    """The counts to measure: all of them, or `probes` spread evenly from the first to the last."""
    counts = list(counts)
    if probes is None or len(counts) <= probes:
        return counts
    if probes < 2:
        raise ValueError(f"probes must be >= 2 (got {probes})")
    idx = np.unique(np.round(np.linspace(0, len(counts) - 1, probes)).astype(int))
    return [counts[i] for i in idx]


def _interpolated(counts: Sequence[int], loss: dict[int, float], now: int) -> np.ndarray:
    """Divergence added at each count: measured (`loss`), or interpolated between the measured counts (the
    current width adds none)."""
    ks = sorted(loss) + [now]
    ys = [loss[k] for k in ks[:-1]] + [0.0]
    return np.array([np.interp(k, ks, ys) if k < now else 0.0 for k in counts])
