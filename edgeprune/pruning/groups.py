"""Channel groups: sets of coupled out-channels torch-pruning removes together, tied to the predictor.

A group (a residual stage's convs + their BNs + the depthwise convs that follow, a conv and its
BN, a concat branch...) comes from torch-pruning's dependency graph. Its *members* are the
conv/linear layers whose output width it changes; the latency predictor knows them by the same
qualified names, so "the group keeps k channels" is the predictor query {member: k for members}.
A group is left alone when any member is fixed for the predictor (feeds a model output, an
attention op...), ignored by the user, or unknown to the table.

Candidate kept counts come from the table's staircases: within a stair fewer channels cost the
same, so only the top of each stair (plus multiples of the table granularity) is worth keeping.

Attention heads are groups of their own (`head_dim` > 0): the packed q/k/v rows of a
`PrunableAttention` (edgeprune.models.attention), which move a whole head at a time (3 x head_dim
rows: its q, k and v). torch-pruning cannot keep that structure, so they are removed here
(`PrunableAttention.remove_heads`); the residual width around them is an ordinary group.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Sequence

from edgeprune.errors import PruningError


@dataclass
class ChannelGroup:
    root: str                  # module the group is rooted at (torch-pruning's out-channel root)
    members: list[str]         # conv/linear layers whose output width the group sets
    channels: int              # current width
    counts: list[int] = field(default_factory=list)   # candidate kept counts, ascending, last == channels
    importance: object = None  # per-channel scores (numpy), higher = keep
    head_dim: int = 0          # > 0: an attention head group; channels are q/k/v rows, 3 * head_dim per head
    values: list | None = None  # knapsack value per candidate count, when measured (pruning.sensitivity)

    @property
    def name(self) -> str:
        return self.root

    @property
    def unit(self) -> int:
        """Channels that go together: one for a channel group, a head's q/k/v rows for a head group."""
        return 3 * self.head_dim if self.head_dim else 1

    def head_of_channel(self):
        """Head index of each channel (q/k/v row) of a head group, in the layer's row order."""
        from edgeprune.models.attention import head_of_row

        return head_of_row(self.channels // self.unit, self.head_dim)


def build_graph(module, input_specs):
    """torch-pruning's dependency graph of `module` traced on its example inputs."""
    import torch
    import torch_pruning as tp

    from edgeprune.models.inputs import example_inputs

    inputs = example_inputs(tuple(input_specs))
    try:
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(module, inputs[0] if len(inputs) == 1 else inputs,
                                                         verbose=False)
    except Exception as e:
        raise PruningError(f"torch-pruning cannot trace {type(module).__name__} ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:160] if str(e) else ''}); prune a model whose forward "
                           "runs on the example input without data-dependent control flow") from None


def find_groups(module, dg, lm, ignore: Sequence[str] = ()) -> list[ChannelGroup]:
    """The prunable channel groups of `module`, each mapped onto the predictor's layer names."""
    import torch.nn as nn

    from edgeprune.models.attention import attention_modules

    names = {m: n for n, m in module.named_modules()}
    prunable = lm.channels()
    attention = {f"{n}.qkv": a for n, a in attention_modules(module).items()}
    ignored = [m for n, m in module.named_modules()
               if (_matches(n, ignore) or n in attention) and isinstance(m, (nn.Conv2d, nn.Linear))]
    groups = []
    for qkv, a in attention.items():
        if qkv in prunable and not _matches(qkv, ignore) and a.num_heads > 1:
            groups.append(ChannelGroup(root=qkv, members=[qkv], channels=prunable[qkv], head_dim=a.core.head_dim))
    for g in dg.get_all_groups(ignored_layers=ignored, root_module_types=(nn.Conv2d, nn.Linear)):
        members, ok = [], True
        for dep, _ in g.items:
            mod = dep.target.module
            if not dg.is_out_channel_pruning_fn(dep.handler) or not isinstance(mod, (nn.Conv2d, nn.Linear)):
                continue
            n = names.get(mod)
            if n is None or n not in prunable or _matches(n, ignore):
                ok = False
                break
            members.append(n)
        if not ok or not members:
            continue
        root = names[g[0].dep.target.module]
        width = prunable[members[0]]
        if any(prunable[m] != width for m in members):
            continue  # grouped convs with channel multipliers: not a one-width group
        groups.append(ChannelGroup(root=root, members=sorted(set(members)), channels=width))
    return groups


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(name == p or fnmatch.fnmatchcase(name, p) or name.startswith(p + ".") for p in patterns)


def group_channels(groups: Sequence[ChannelGroup], kept: dict[str, int]) -> dict[str, int]:
    """Predictor plan {layer: width} for kept counts {group root: k}."""
    out = {}
    for g in groups:
        if g.root in kept:
            for m in g.members:
                out[m] = int(kept[g.root])
    return out


def set_candidates(groups: Sequence[ChannelGroup], lm, granularity: int, min_keep: float = 0.1) -> None:
    """Fill each group's candidate counts: stair tops of its latency curve + multiples of granularity."""
    for g in groups:
        if g.head_dim:
            g.counts = _head_counts(g, lm, min_keep)
            continue
        n = g.channels
        # below the table's first grid step the curve is extrapolated, not measured: stay at or above it
        lo = max(1, min(n, granularity), min(n, int(round(n * min_keep))))
        lat = [lm.predict(group_channels([g], {g.root: k})) for k in range(lo, n + 1)]
        cands = {n}
        for i, k in enumerate(range(lo, n)):
            if lat[i + 1] > lat[i] * (1 + 1e-6) + 1e-9 and (k % granularity == 0 or lat[i + 1] > lat[i] * 1.01):
                cands.add(k)  # the widest count before the cost steps up
        cands.update(k for k in range(granularity, n, granularity) if k >= lo)
        # keep only counts that are stair tops: a wider count of equal cost dominates a narrower one
        by_cost: dict[float, int] = {}
        for k in sorted(cands):
            by_cost[round(lat[k - lo], 9)] = k
        # and a narrower count that is not cheaper than some wider one is never worth it (off-tile widths can
        # cost more than the next tile: the floor must be the cheapest option, not the narrowest)
        kept, cheapest = [], float("inf")
        for k in sorted(set(by_cost.values()) | {n}, reverse=True):
            c = lat[k - lo]
            if c < cheapest - 1e-12:
                kept.append(k)
                cheapest = c
        g.counts = sorted(kept)


def _head_counts(g: ChannelGroup, lm, min_keep: float) -> list[int]:
    """Whole heads, at least one (and min_keep of them); a head count no cheaper than a larger one is dropped."""
    import math

    heads = g.channels // g.unit
    lo = max(1, math.ceil(heads * min_keep - 1e-9))
    kept, cheapest = [], float("inf")
    for h in range(heads, lo - 1, -1):
        c = lm.predict(group_channels([g], {g.root: h * g.unit}))
        if h == heads or c < cheapest - 1e-12:
            kept.append(h * g.unit)
            cheapest = min(cheapest, c)
    return sorted(kept)


def granularity_of(table, default: int = 8) -> int:
    return int(table.meta.get("granularity") or default)
