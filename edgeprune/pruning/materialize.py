"""Turn a channel plan into a physically smaller model, and replay it on a fresh base model.

The replayable record is torch-pruning's pruning history: [root module, out-channels?, removed
indices] per step. Replaying it on the base architecture rebuilds the pruned shapes exactly, so a
pruned model directory stores the base spec + the history, never pickled code.
"""

from __future__ import annotations

import copy
from typing import Sequence

from edgeprune.errors import PruningError
from edgeprune.pruning.importance import channels_to_remove


def apply_plan(module, input_specs, groups, kept: dict[str, int], copy_model: bool = True):
    """Prune `module` (a deep copy unless copy_model=False) to the kept counts; returns (model, history)."""
    from edgeprune.pruning.groups import build_graph

    model = copy.deepcopy(module) if copy_model else module
    model.eval()
    dg = build_graph(model, input_specs)
    mods = dict(model.named_modules())
    for g in groups:
        k = int(kept.get(g.root, g.channels))
        if k >= g.channels:
            continue
        if k < 1:
            raise PruningError(f"group {g.root} would keep {k} channels; a layer needs at least one")
        idxs = channels_to_remove(g.importance, k)
        root = mods[g.root]
        group = dg.get_pruning_group(root, dg.get_pruner_of_module(root).prune_out_channels, idxs)
        group.prune()
    history = [[str(n), bool(out), [int(i) for i in idx]] for n, out, idx in dg.pruning_history()]
    return model.eval(), history


def replay(module, input_specs, history: Sequence) -> object:
    """Apply a recorded pruning history to `module` (in place) and return it."""
    from edgeprune.pruning.groups import build_graph

    dg = build_graph(module.eval(), input_specs)
    try:
        dg.load_pruning_history([[n, bool(o), list(map(int, idx))] for n, o, idx in history])
    except Exception as e:
        raise PruningError(f"the channel plan does not fit this model ({type(e).__name__}: {e}); "
                           "the base model changed since it was pruned: prune again") from None
    return module.eval()
