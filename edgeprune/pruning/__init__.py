"""Hardware-aware channel pruning driven by device latency tables (see docs/pruning.md).

    from edgeprune.pruning import prune, prune_model_spec
"""

from __future__ import annotations


def __getattr__(name):
    # torch and torch-pruning load only when pruning is used
    if name in ("prune", "prune_model_spec", "PruneResult", "METHODS"):
        from edgeprune.pruning import api

        return getattr(api, name)
    raise AttributeError(name)


__all__ = ["prune", "prune_model_spec", "PruneResult", "METHODS"]
