"""Per-channel importance of each group: which channels to keep when a group shrinks.

    magnitude  L2 norm of every coupled weight slice (no data needed)
    bn         |gamma| of the group's batch-norms (falls back to magnitude when a group has none)
    taylor     first-order Taylor |w * dL/dw| summed over calibration batches (needs data)

Scores are normalized per group (mean 1). Raw scores are not comparable across layers (weight
scales differ per layer, BN folds them around), and neither are per-channel scores of groups of
different widths: a channel of a 16-wide residual stream carries more of the model than a channel
of a 256-wide expansion. So the knapsack's value of keeping k channels of a group is the *share*
of the group's importance its k best channels hold, weighted by the number of layers the group
sets (a residual stream coupling four convs counts four times): `group_values`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edgeprune.errors import PruningError

CRITERIA = ("magnitude", "bn", "taylor")


def score_groups(module, dg, groups, criterion: str = "magnitude", batches: Sequence = (), loss_fn=None) -> None:
    """Set `importance` (numpy, one score per channel) on every group."""
    import torch
    import torch_pruning as tp

    if criterion not in CRITERIA:
        raise PruningError(f"unknown importance '{criterion}'; use one of {', '.join(CRITERIA)}")
    if criterion == "taylor":
        if not batches:
            raise PruningError("taylor importance needs calibration batches; pass --data (or use --importance magnitude)")
        _accumulate_grads(module, batches, loss_fn)
        imp = tp.importance.GroupTaylorImportance()
    elif criterion == "bn":
        imp = tp.importance.BNScaleImportance()
    else:
        imp = tp.importance.GroupMagnitudeImportance(p=2)
    fallback = tp.importance.GroupMagnitudeImportance(p=2)
    mods = dict(module.named_modules())
    for g in groups:
        if g.head_dim:
            s = _head_scores(module, g, taylor=criterion == "taylor")
        else:
            root = mods[g.root]
            fn = dg.get_pruner_of_module(root).prune_out_channels
            group = dg.get_pruning_group(root, fn, list(range(g.channels)))
            with torch.no_grad():
                s = imp(group)
                if s is None:
                    s = fallback(group)
            s = s.detach().double().cpu().numpy() if s is not None else np.ones(g.channels)
        s = np.nan_to_num(np.abs(s), nan=0.0)
        g.importance = s / s.mean() if s.mean() > 0 else np.ones(g.channels)
    if criterion == "taylor":
        module.zero_grad(set_to_none=True)


def _head_scores(module, g, taylor: bool) -> np.ndarray:
    """Per q/k/v row of a head group: its head's score (squared L2 norm, or |w * grad| for taylor, over the
    head's q/k/v rows and its output-projection columns) shared evenly by the head's rows."""
    import torch

    attn = module.get_submodule(g.root.rsplit(".", 1)[0])
    head = g.head_of_channel()
    d, heads = g.head_dim, g.channels // g.unit

    def score(p):
        if p is None or (taylor and p.grad is None):
            return None
        return ((p * p.grad).abs() if taylor else p * p).detach().double()

    rows = torch.zeros(g.channels, dtype=torch.float64)
    for p in (attn.qkv.weight, attn.qkv.bias):
        t = score(p)
        if t is not None:
            rows += t.reshape(g.channels, -1).sum(1)
    cols = score(attn.proj.weight)
    per_head = torch.zeros(heads, dtype=torch.float64).index_add_(0, torch.as_tensor(head), rows)
    if cols is not None:
        per_head += cols.sum(0).reshape(heads, d).sum(1)
    return (per_head[torch.as_tensor(head)] / g.unit).numpy()


def removed_channels(group, keep: int) -> list[int]:
    """The channels to remove so `keep` remain: the lowest-scoring ones, or for a head group the rows of its
    lowest-scoring heads (whole heads only)."""
    if not group.head_dim:
        return channels_to_remove(group.importance, keep)
    drop = set(removed_heads(group, keep))
    return [i for i, h in enumerate(group.head_of_channel()) if int(h) in drop]


def removed_heads(group, keep: int) -> list[int]:
    """Head indices a head group drops to keep `keep` channels: its lowest-scoring heads (ties broken by index)."""
    scores = np.zeros(group.channels // group.unit)
    np.add.at(scores, group.head_of_channel(), np.asarray(group.importance, dtype=float))
    return channels_to_remove(scores, max(1, keep // group.unit))


def _accumulate_grads(module, batches, loss_fn) -> None:
    import torch
    import torch.nn.functional as F

    module.zero_grad(set_to_none=True)
    was = module.training
    module.eval()
    with torch.enable_grad():
        for batch in batches:
            x, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
            out = module(x)
            if loss_fn is not None:
                loss = loss_fn(out, y)
            elif y is not None and out.dim() == 2:
                loss = F.cross_entropy(out, y)
            else:  # no labels: keep the output close to itself under perturbation (energy of the output)
                loss = out.float().pow(2).mean()
            loss.backward()
    module.train(was)


def kept_values(importance: np.ndarray, counts: Sequence[int]) -> list[float]:
    """Value of keeping k channels = sum of the k largest scores, for each candidate k."""
    srt = np.sort(np.asarray(importance))[::-1]
    csum = np.concatenate([[0.0], np.cumsum(srt)])
    return [float(csum[k]) for k in counts]


def group_values(importance: np.ndarray, counts: Sequence[int], weight: float = 1.0) -> list[float]:
    """Knapsack value of keeping k channels: weight * (share of the group's importance in its k best channels).

    Scale-free, so groups of different widths and layers of different weight scales compare; the
    sorted sum keeps it concave (the first channels removed are the least important)."""
    vals = kept_values(importance, counts)
    total = float(np.sum(np.asarray(importance)))
    if not total > 0:  # no signal at all: every channel counts the same
        return [weight * k / max(len(importance), 1) for k in counts]
    return [weight * v / total for v in vals]


def channels_to_remove(importance: np.ndarray, keep: int) -> list[int]:
    """Indices of the lowest-scoring channels so that `keep` remain (ties broken by index)."""
    order = np.lexsort((np.arange(len(importance)), -np.asarray(importance)))
    return sorted(int(i) for i in order[keep:])
