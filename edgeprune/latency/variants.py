"""Channel-pruned variants of a model (real, smaller nn.Modules with the same module names).

Used to calibrate the predictor (one uniformly pruned variant) and to validate it (random
per-layer ratios). torch-pruning's dependency graph keeps residual/concat groups consistent.
"""

from __future__ import annotations

import copy
import random
import warnings
from typing import Sequence

from edgeprune.errors import PruningError


def out_channels(module) -> dict[str, int]:
    """Out-channel count of every conv / linear, by qualified name."""
    import torch.nn as nn

    out = {}
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            out[name] = m.out_channels
        elif isinstance(m, nn.Linear):
            out[name] = m.out_features
    return out


def prune_variant(module, input_specs: Sequence, ratios: dict[str, float], prunable: Sequence[str], round_to: int = 8):
    """A deep copy of `module` with each named layer's out channels pruned by its ratio (random channels)."""
    import torch
    import torch_pruning as tp

    from edgeprune.models.attention import attention_modules
    from edgeprune.models.inputs import example_inputs

    model = copy.deepcopy(module).eval()
    mods = dict(model.named_modules())
    # attention heads go whole, by hand (torch-pruning would cut q/k/v rows at random): see _drop_heads
    heads = {f"{n}.qkv": a for n, a in attention_modules(model).items()}
    keep = set(prunable) - set(heads)
    ignored = [m for n, m in mods.items() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and n not in keep]
    ratio_dict = {mods[n]: float(r) for n, r in ratios.items() if n in mods and r > 0 and n not in heads}
    inputs = example_inputs(tuple(input_specs))
    example = inputs[0] if len(inputs) == 1 else inputs
    try:
        torch.manual_seed(0)
        with warnings.catch_warnings():  # class tokens, position embeddings: their last dim goes, as wanted
            warnings.filterwarnings("ignore", "Unwrapped parameters detected", UserWarning)
            pruner = tp.pruner.BasePruner(model, example, importance=tp.importance.RandomImportance(),
                                          pruning_ratio=0.0, pruning_ratio_dict=ratio_dict, ignored_layers=ignored,
                                          round_to=round_to)
        pruner.step()
    except Exception as e:
        raise PruningError(f"torch-pruning could not prune {type(module).__name__} "
                           f"({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    _drop_heads(heads, {n: r for n, r in ratios.items() if n in heads and n in set(prunable)})
    return model.eval()


def _drop_heads(attention: dict, ratios: dict[str, float]) -> None:
    """Remove round(ratio x heads) random heads (at least one kept) from each named attention's qkv."""
    for qkv, r in ratios.items():
        a = attention[qkv]
        n = min(int(round(a.num_heads * float(r))), a.num_heads - 1)
        if n > 0:
            a.remove_heads(random.Random(f"{qkv}:{r}").sample(range(a.num_heads), n))


def random_ratios(prunable: Sequence[str], rng: random.Random, low: float = 0.1, high: float = 0.6) -> dict[str, float]:
    return {n: round(rng.uniform(low, high), 3) for n in prunable}


def group_ratios(graph, rng: random.Random | None = None, ratio: float | None = None, low: float = 0.1,
                 high: float = 0.6) -> dict[str, float]:
    """One ratio per prunable coupled group, given to every member (torch-pruning may root a group anywhere)."""
    rng = rng or random.Random(0)
    out: dict[str, float] = {}
    by_group: dict[int, float] = {}
    for i, name in enumerate(graph.symbols):
        g = graph.group_of[i]
        if g in graph.fixed_groups:
            continue
        if g not in by_group:
            by_group[g] = ratio if ratio is not None else round(rng.uniform(low, high), 3)
        out[name] = by_group[g]
    return out


def group_roots(graph) -> list[str]:
    """One module name per prunable coupled group (the first conv/linear of the group, no followers)."""
    seen, roots = set(), []
    for i, name in enumerate(graph.symbols):
        g = graph.group_of[i]
        if g in graph.fixed_groups or g in seen or name in graph.followers:
            continue
        seen.add(g)
        roots.append(name)
    return roots
