"""Core ML prediction (macOS only; coremltools cannot run a model on Linux).

On other systems `load` raises a one-line error; `edgeprune.verify` then checks the
.mlpackage structurally instead (see `edgeprune.exporters.coreml.check_structure`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgeprune.errors import EdgepruneError


def can_predict() -> bool:
    return sys.platform == "darwin"


class CoreMLRuntime:
    name = "coreml"
    artifact_format = "coreml"

    def load(self, path, threads: int | None = None):
        if not can_predict():
            raise EdgepruneError("Core ML prediction runs only on macOS; on this host the .mlpackage is checked structurally")
        import coremltools as ct

        path = Path(path)
        if not path.exists():
            raise EdgepruneError(f"Core ML package not found: {path}")
        try:
            model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        except Exception as e:
            raise EdgepruneError(f"Core ML cannot load {path} ({type(e).__name__}); re-export it") from None
        return _CoreMLSession(model)


class _CoreMLSession:
    def __init__(self, model):
        self.model = model
        spec = model.get_spec()
        self.input_names = [i.name for i in spec.description.input]
        self.output_names = [o.name for o in spec.description.output]
        self.input_specs = [(tuple(i.type.multiArrayType.shape), "float32") for i in spec.description.input]

    def run(self, inputs: list) -> list:
        out = self.model.predict(dict(zip(self.input_names, inputs)))
        return [out[n] for n in self.output_names]
