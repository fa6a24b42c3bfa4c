"""Loader for the "pruned" model kind: rebuild the base architecture, replay the channel plan.

recipe = {"base": MODEL spec of the unpruned model, "inputs": [input specs], "history": [...],
          "attention": [nn.MultiheadAttention modules rewritten as PrunableAttention before pruning]}
(weights are loaded afterwards, strictly, by edgeprune.models.saved).
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.errors import ModelSpecError


def pruned_recipe(base_spec: str, input_specs, history, attention=()) -> dict:
    out = {"base": str(base_spec), "inputs": [s.to_json() for s in input_specs], "history": history}
    if attention:
        out["attention"] = list(attention)
    return out


def build_pruned(recipe: dict, directory: Path):
    from edgeprune.models.inputs import InputSpec
    from edgeprune.models.loading import load_model
    from edgeprune.pruning.materialize import replay

    base = recipe.get("base")
    if not base or "history" not in recipe or not recipe.get("inputs"):
        raise ModelSpecError(f"{Path(directory) / 'model.json'}: a pruned model's recipe needs 'base', 'inputs' "
                             "and 'history'; the directory is corrupted: prune again")
    module = load_model(base).module
    names = list(recipe.get("attention") or [])
    if names:
        from edgeprune.models.attention import convert_attention

        missing = set(names) - set(convert_attention(module, names))
        if missing:
            raise ModelSpecError(f"{Path(directory) / 'model.json'}: the base model has no self-attention "
                                 f"{sorted(missing)[0]} to rewrite; the base model changed since it was pruned: prune again")
    specs = tuple(InputSpec.from_json(d) for d in recipe["inputs"])
    return replay(module, specs, recipe["history"])
