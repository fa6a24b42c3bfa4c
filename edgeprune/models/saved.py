"""The edgeprune model directory: a model every edgeprune command can load.

    model.json   what the model is: `kind`, a `recipe` to rebuild the architecture, input specs
    weights.pt   the state_dict (loaded with weights_only=True)
    model.pt2    optional torch.export program of the same model, for tools outside edgeprune

The architecture is rebuilt from the recipe (a base spec plus a replayable channel plan, or a
student config) rather than unpickled, so loading runs no code from the file. Each kind's
loader lives with the capability that writes it and is imported only when needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from edgeprune.errors import ModelSpecError
from edgeprune.files import atomic_directory, atomic_write_json, read_json
from edgeprune.registry import LazyRegistry
from edgeprune.models.inputs import InputSpec
from edgeprune.models.loading import LoadedModel

SCHEMA = "edgeprune.model"
VERSION = 1
MODEL_JSON = "model.json"
WEIGHTS = "weights.pt"

# kind -> "module:function"; the function takes (recipe, directory) and returns an nn.Module
# with the right architecture (weights are loaded afterwards, strictly).
_KINDS = LazyRegistry("model kind", {
    "module": "edgeprune.models.saved:_build_from_base",
    "pruned": "edgeprune.pruning.saved:build_pruned",
    "vae-student": "edgeprune.vae.saved:build_student",
}, error=ModelSpecError)


def register_kind(kind: str, builder: str) -> None:
    """Register a loader for a new model kind, as a lazy 'module:function' path."""
    _KINDS.register(kind, builder)


def is_model_dir(path: str | Path) -> bool:
    return (Path(path) / MODEL_JSON).is_file()


def save_model_dir(
    path: str | Path,
    module,
    *,
    kind: str,
    recipe: dict[str, Any],
    inputs: tuple[InputSpec, ...],
    extra: dict[str, Any] | None = None,
    write_pt2: bool = True,
    on_complete: Callable[[Path], None] | None = None,
) -> Path:
    """Write the model directory atomically (it appears only when complete).

    `extra` maps file names to JSON-able objects or bytes written beside the model (plans, reports).
    `on_complete(tmpdir)` may add more files before the directory is published.
    """
    import torch

    if kind not in _KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    path = Path(path)
    with atomic_directory(path) as tmp:
        torch.save(module.state_dict(), tmp / WEIGHTS)
        if write_pt2:
            from edgeprune.models.inputs import example_inputs

            try:
                ep = torch.export.export(module.eval(), example_inputs(inputs), strict=False)
                torch.export.save(ep, str(tmp / "model.pt2"))
            except Exception:  # the .pt2 is a convenience; the recipe is the source of truth
                pass
        for name, obj in (extra or {}).items():
            if isinstance(obj, (bytes, bytearray)):
                (tmp / name).write_bytes(obj)
            else:
                atomic_write_json(tmp / name, obj)
        if on_complete:
            on_complete(tmp)
        atomic_write_json(
            tmp / MODEL_JSON,
            {
                "schema": SCHEMA,
                "version": VERSION,
                "kind": kind,
                "inputs": [s.to_json() for s in inputs],
                "recipe": recipe,
            },
        )
    return path


def load_model_dir(path: str | Path) -> LoadedModel:
    import torch

    path = Path(path)
    meta = read_json(path / MODEL_JSON, "edgeprune model file") if (path / MODEL_JSON).exists() else None
    if meta is None:
        raise ModelSpecError(
            f"{path} is a directory but not an edgeprune model (no {MODEL_JSON}); "
            "point at a model spec, or at a directory written by 'edgeprune prune' / 'edgeprune vae'"
        )
    if meta.get("schema") != SCHEMA or not isinstance(meta.get("version"), int):
        raise ModelSpecError(f"{path / MODEL_JSON} is not an edgeprune model description")
    if meta["version"] > VERSION:
        raise ModelSpecError(f"{path} was written by a newer edgeprune (model format v{meta['version']}); upgrade edgeprune")
    kind = meta.get("kind")
    builder = _KINDS.load(kind, context=str(path))
    module = builder(meta.get("recipe", {}), path)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise ModelSpecError(f"{path} has no {WEIGHTS}; the model directory is incomplete")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        module.load_state_dict(state, strict=True)
    except Exception as e:
        raise ModelSpecError(
            f"{weights} cannot be loaded into the model its recipe describes ({type(e).__name__}); "
            "the directory is corrupted: regenerate it"
        ) from None
    module.eval()
    inputs = tuple(InputSpec.from_json(d) for d in meta.get("inputs", [])) or None
    return LoadedModel(module, str(path), inputs=inputs, metadata={"kind": kind, "recipe": meta.get("recipe", {})})


def _build_from_base(recipe: dict, directory: Path):
    from edgeprune.models.loading import load_model

    base = recipe.get("base")
    if not base:
        raise ModelSpecError(f"{directory / MODEL_JSON}: recipe has no 'base' model spec")
    return load_model(base).module
