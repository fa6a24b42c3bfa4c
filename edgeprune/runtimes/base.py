"""Host runtimes that execute artifacts: for parity checks and for latency measurement.

    >>> session = get_runtime("onnxruntime").load("model.onnx", threads=2)  # doctest: +SKIP
    >>> outputs = session.run([x_numpy])                                    # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Protocol

from edgeprune.errors import EdgepruneError


class Session(Protocol):
    def run(self, inputs: list) -> list:
        """numpy arrays in, numpy arrays out (in the model's output order)."""
        ...


class Runtime(Protocol):
    name: str
    artifact_format: str  # the exporter name whose artifacts it runs

    def load(self, path, threads: int | None = None) -> Session: ...


_RUNTIMES: dict[str, str] = {
    "onnxruntime": "edgeprune.runtimes.onnxruntime:OnnxRuntime",
    "executorch": "edgeprune.runtimes.executorch:ExecuTorchRuntime",
    "litert": "edgeprune.runtimes.litert:LiteRTRuntime",
    "coreml": "edgeprune.runtimes.coreml:CoreMLRuntime",  # macOS only
}
# which runtime runs which export format on this host
FORMAT_RUNTIME = {"onnx": "onnxruntime", "executorch": "executorch", "tflite": "litert", "tensorrt": "onnxruntime"}


def register_runtime(name: str, target: str) -> None:
    _RUNTIMES[name] = target


def runtime_names() -> list[str]:
    return list(_RUNTIMES)


def get_runtime(name: str) -> Runtime:
    if name not in _RUNTIMES:
        raise EdgepruneError(f"unknown runtime '{name}'; available here: {', '.join(_RUNTIMES)}")
    mod, _, cls = _RUNTIMES[name].partition(":")
    try:
        module = importlib.import_module(mod)
    except ImportError as e:
        raise EdgepruneError(f"runtime '{name}' is not installed ({e.name or e}); pip install 'edgeprune[all]'") from None
    return getattr(module, cls)()
