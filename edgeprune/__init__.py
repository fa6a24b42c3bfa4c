"""edgeprune: latency tables measured on the device, pruning driven by them, verified export.

The public API is one verb per stage; everything else lives in its subpackage:

    >>> import edgeprune as ep                                                    # doctest: +SKIP
    >>> loaded, specs = ep.load_model_with_inputs("torchvision:resnet18", "1x3x96x96")
    >>> ep.build_table(loaded.module, specs, runtime="onnxruntime", out="t.json")  # measure this host
    >>> table = ep.load_table("t.json")
    >>> result = ep.prune(loaded.module, specs, table, speedup=2.0)               # table-driven pruning
    >>> ep.export_model(result.module, specs, "onnx,executorch", "fp32", "out/")  # verified export
    >>> ep.verify_dir("out/")

Names resolve lazily, so `import edgeprune` stays fast and torch-free until a verb is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "EdgepruneError": "edgeprune.errors",
    "load_model": "edgeprune.models",
    "load_model_with_inputs": "edgeprune.models",
    "parse_inputs": "edgeprune.models",
    "export_model": "edgeprune.export",
    "export_model_spec": "edgeprune.export",
    "verify_dir": "edgeprune.export",
    "load_device": "edgeprune.devices",
    "list_devices": "edgeprune.devices",
    "bench_targets": "edgeprune.devices.bench",
    "measure_module": "edgeprune.latency.measure",
    "build_table": "edgeprune.latency",
    "load_table": "edgeprune.latency",
    "LatencyModel": "edgeprune.latency",
    "prune": "edgeprune.pruning",
    "prune_model_spec": "edgeprune.pruning",
    "redesign_model": "edgeprune.vae",
    "distill_model": "edgeprune.vae",
    "run_build": "edgeprune.build",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgeprune' has no attribute '{name}'")


def __dir__():
    return sorted(__all__)
