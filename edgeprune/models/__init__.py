"""Model specs, input specs and the edgeprune model directory."""

from edgeprune.models.inputs import InputSpec, example_inputs, format_inputs, parse_inputs
from edgeprune.models.loading import LoadedModel, apply_weights, load_model, load_model_with_inputs
from edgeprune.models.saved import is_model_dir, load_model_dir, register_kind, save_model_dir

__all__ = [
    "InputSpec", "LoadedModel", "apply_weights", "example_inputs", "format_inputs", "is_model_dir",
    "load_model", "load_model_dir", "load_model_with_inputs", "parse_inputs", "register_kind", "save_model_dir",
]
