"""Small helpers the commands share: resolve MODEL + --input into a module and example inputs."""

from __future__ import annotations


def load_with_inputs(model: str, input_text: str | None, weights: str | None = None):
    """Return (LoadedModel, input specs); --input may be omitted for saved edgeprune models."""
    from edgeprune.models import load_model_with_inputs

    return load_model_with_inputs(model, input_text, weights)
