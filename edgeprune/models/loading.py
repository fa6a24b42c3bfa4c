"""Resolve a MODEL spec to an nn.Module.

Specs: `torchvision:NAME`, `package.module:factory`, `path/to/file.py:factory`, a saved
ExportedProgram `.pt2`, or a directory written by edgeprune (see `saved.py`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgeprune.errors import EdgepruneError, ModelSpecError
from edgeprune.models.inputs import InputSpec

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A module plus where it came from; `inputs` is known for saved edgeprune models."""

    module: "object"  # torch.nn.Module
    spec: str
    inputs: tuple[InputSpec, ...] | None = None
    metadata: dict = field(default_factory=dict)


def load_model(spec: str, weights: str | None = None) -> LoadedModel:
    """Build the module named by `spec`, in eval mode, optionally loading a state_dict."""
    import torch

    spec = str(spec).strip()
    if not spec:
        raise ModelSpecError("empty model spec; give e.g. torchvision:resnet18 or my_models.py:build")
    path = Path(spec)
    if path.is_dir():
        from edgeprune.models.saved import load_model_dir

        loaded = load_model_dir(path)
    elif spec.endswith(".pt2"):
        loaded = LoadedModel(_load_pt2(path), spec)
    elif spec.startswith("torchvision:"):
        loaded = LoadedModel(_load_torchvision(spec.split(":", 1)[1]), spec)
    elif ":" in spec:
        loaded = LoadedModel(_load_factory(spec), spec)
    else:
        raise ModelSpecError(
            f"cannot resolve model spec '{spec}': not a directory or .pt2 file, and not of the form "
            "torchvision:NAME, package.module:factory or path/to/file.py:factory"
        )
    if weights:
        apply_weights(loaded.module, weights)
        loaded.metadata["weights"] = str(weights)
    if isinstance(loaded.module, torch.nn.Module):
        try:
            loaded.module.eval()
        except NotImplementedError:  # modules from torch.export programs are frozen in the mode they were exported in
            pass
    return loaded


def load_model_with_inputs(spec: str, input_text: str | None, weights: str | None = None):
    """(LoadedModel, input specs); the input text may be omitted for saved edgeprune models, which record theirs."""
    from edgeprune.errors import InputSpecError
    from edgeprune.models.inputs import parse_inputs

    loaded = load_model(spec, weights)
    if input_text:
        specs = parse_inputs(input_text)
    elif loaded.inputs:
        specs = loaded.inputs
    else:
        raise InputSpecError(f"--input is required for '{spec}'; give the input shape, e.g. --input 1x3x224x224")
    return loaded, specs


def apply_weights(module, weights: str) -> None:
    """Load a state_dict checkpoint safely (weights_only=True)."""
    import torch

    p = Path(weights)
    if not p.is_file():
        raise ModelSpecError(f"weights file not found: {p}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad pickles
        raise ModelSpecError(
            f"cannot read weights {p} as a state_dict ({type(e).__name__}); save it with "
            "torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelSpecError(f"weights {p} hold a {type(state).__name__}, not a state_dict")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ModelSpecError(f"weights {p} do not match the model: {first}") from None


def _load_torchvision(name: str):
    try:
        import torchvision.models as tvm
    except ImportError:
        raise ModelSpecError("torchvision is not installed; pip install 'edgeprune[vision]'") from None
    available = tvm.list_models()
    if name not in available:
        close = [m for m in available if name.lower() in m][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else "; see torchvision.models.list_models()"
        raise ModelSpecError(f"unknown torchvision model '{name}'{hint}")
    return tvm.get_model(name, weights=None)


def _load_pt2(path: Path):
    import torch

    if not path.is_file():
        raise ModelSpecError(f"ExportedProgram file not found: {path}")
    try:
        ep = torch.export.load(str(path))
    except Exception as e:
        raise ModelSpecError(f"cannot load {path} as a torch.export program ({type(e).__name__}: {e})") from None
    return ep.module()


def _load_factory_callable(spec: str):
    """Import `file.py:name` or `package.module:name` and return the attribute."""
    target, _, attr = spec.rpartition(":")
    if not attr.isidentifier():
        raise ModelSpecError(f"bad factory name '{attr}' in spec '{spec}'")
    if target.endswith(".py"):
        file = Path(target)
        if not file.is_file():
            raise ModelSpecError(f"file not found: {file} (from spec '{spec}')")
        mod_name = f"_edgeprune_user_{abs(hash(str(file.resolve())))}"
        if mod_name in sys.modules:
            module = sys.modules[mod_name]
        else:
            s = importlib.util.spec_from_file_location(mod_name, file)
            module = importlib.util.module_from_spec(s)
            sys.modules[mod_name] = module  # so pickling/dataclasses inside the file work
            try:
                s.loader.exec_module(module)
            except Exception as e:
                del sys.modules[mod_name]
                raise ModelSpecError(f"importing {file} failed: {type(e).__name__}: {e}") from None
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ModelSpecError(f"cannot import module '{target}' from spec '{spec}': {e}") from None
    if not hasattr(module, attr):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise ModelSpecError(f"'{target}' has no attribute '{attr}'; callables there: {', '.join(sorted(names)[:10])}")
    return getattr(module, attr)


def _load_factory(spec: str):
    import torch

    factory = _load_factory_callable(spec)
    if isinstance(factory, torch.nn.Module):
        return factory
    if not callable(factory):
        raise ModelSpecError(f"'{spec}' is not callable; point at a function returning an nn.Module")
    try:
        params = inspect.signature(factory).parameters
        required = [p for p in params.values() if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        required = []
    if required:
        raise ModelSpecError(f"factory '{spec}' needs arguments ({', '.join(p.name for p in required)}); wrap it in a function without arguments")
    try:
        model = factory()
    except EdgepruneError:
        raise
    except Exception as e:
        raise ModelSpecError(f"factory '{spec}' raised {type(e).__name__}: {e}") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelSpecError(f"factory '{spec}' returned {type(model).__name__}, not a torch.nn.Module")
    return model
