"""Turn a channel plan into a physically smaller model, and replay it on a fresh base model.

The replayable record is a history: torch-pruning's pruning history ([root module, out-channels?,
removed indices] per step), after the attention heads removed here ([attention module, "heads",
removed heads], which torch-pruning cannot do: see edgeprune.models.attention). Replaying it on the
base architecture rebuilds the pruned shapes exactly, so a pruned model directory stores the base
spec + the history, never pickled code.
"""

from __future__ import annotations

import copy
from typing import Sequence

from edgeprune.errors import PruningError
from edgeprune.pruning.importance import removed_channels, removed_heads

HEADS = "heads"


def apply_plan(module, input_specs, groups, kept: dict[str, int], copy_model: bool = True):
    """Prune `module` (a deep copy unless copy_model=False) to the kept counts; returns (model, history)."""
    from edgeprune.pruning.groups import build_graph

    model = copy.deepcopy(module) if copy_model else module
    model.eval()
    history: list = []
    for g in groups:
        k = int(kept.get(g.root, g.channels))
        if g.head_dim and k < g.channels:
            attn = g.root.rsplit(".", 1)[0]
            drop = removed_heads(g, k)
            _remove_heads(model, attn, drop)
            history.append([attn, HEADS, drop])
    dg = build_graph(model, input_specs)
    mods = dict(model.named_modules())
    for g in groups:
        k = int(kept.get(g.root, g.channels))
        if g.head_dim or k >= g.channels:
            continue
        if k < 1:
            raise PruningError(f"group {g.root} would keep {k} channels; a layer needs at least one")
        root = mods[g.root]
        group = dg.get_pruning_group(root, dg.get_pruner_of_module(root).prune_out_channels, removed_channels(g, k))
        group.prune()
    history += [[str(n), bool(out), [int(i) for i in idx]] for n, out, idx in dg.pruning_history()]
    return model.eval(), history


def replay(module, input_specs, history: Sequence) -> object:
    """Apply a recorded pruning history to `module` (in place) and return it."""
    from edgeprune.pruning.groups import build_graph

    module.eval()
    steps = []
    try:
        for n, kind, idx in history:
            if kind == HEADS:
                _remove_heads(module, n, idx)
            else:
                steps.append([n, bool(kind), list(map(int, idx))])
        if steps:
            build_graph(module, input_specs).load_pruning_history(steps)
    except Exception as e:
        raise PruningError(f"the channel plan does not fit this model ({type(e).__name__}: {e}); "
                           "the base model changed since it was pruned: prune again") from None
    return module.eval()


def _remove_heads(model, name: str, heads: Sequence[int]) -> None:
    from edgeprune.models.attention import PrunableAttention

    attn = model.get_submodule(name)
    if not isinstance(attn, PrunableAttention):
        raise PruningError(f"{name} is a {type(attn).__name__}, not an attention layer whose heads can be removed")
    attn.remove_heads([int(h) for h in heads])
