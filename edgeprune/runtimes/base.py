"""Host runtimes that execute artifacts: for parity checks and for latency measurement.

    >>> session = get_runtime("onnxruntime").load("model.onnx", threads=2)  # doctest: +SKIP
    >>> outputs = session.run([x_numpy])                                    # doctest: +SKIP
"""

from __future__ import annotations

from typing import Protocol

from edgeprune.errors import EdgepruneError
from edgeprune.registry import LazyRegistry


class Session(Protocol):
    def run(self, inputs: list) -> list:
        """numpy arrays in, numpy arrays out (in the model's output order)."""
        ...


class Runtime(Protocol):
    name: str
    artifact_format: str  # the exporter name whose artifacts it runs

    def load(self, path, threads: int | None = None) -> Session: ...


_RUNTIMES = LazyRegistry("runtime", {
    "onnxruntime": "edgeprune.runtimes.onnxruntime:OnnxRuntime",
    "executorch": "edgeprune.runtimes.executorch:ExecuTorchRuntime",
    "litert": "edgeprune.runtimes.litert:LiteRTRuntime",
    "coreml": "edgeprune.runtimes.coreml:CoreMLRuntime",  # macOS only
})
# which runtime runs which export format on this host
FORMAT_RUNTIME = {"onnx": "onnxruntime", "executorch": "executorch", "tflite": "litert", "tensorrt": "onnxruntime"}


def register_runtime(name: str, target: str) -> None:
    _RUNTIMES.register(name, target)


def runtime_names() -> list[str]:
    return _RUNTIMES.names()


def get_runtime(name: str) -> Runtime:
    def missing(e: ImportError) -> EdgepruneError:
        return EdgepruneError(f"runtime '{name}' is not installed ({e.name or e}); pip install 'edgeprune[all]'")

    return _RUNTIMES.load(name, missing=missing)()
