"""Small helpers the commands share: resolve MODEL + --input into a module and example inputs."""

from __future__ import annotations

from edgeprune.errors import InputSpecError


def load_with_inputs(model: str, input_text: str | None, weights: str | None = None):
    """Return (LoadedModel, input specs); --input may be omitted for saved edgeprune models."""
    from edgeprune.models import load_model, parse_inputs

    loaded = load_model(model, weights)
    if input_text:
        specs = parse_inputs(input_text)
    elif loaded.inputs:
        specs = loaded.inputs
    else:
        raise InputSpecError(f"--input is required for '{model}'; give the input shape, e.g. --input 1x3x224x224")
    return loaded, specs
