"""The exporter plug-in point: one small interface, a registry by name, lazy imports.

A new format is one module with one class:

    >>> class MyExporter:
    ...     name = "myformat"; suffix = ".my"; precisions = (Precision.FP32,)
    ...     def export(self, module, example_inputs, out_path, options): ...
    >>> register_exporter("myformat", "my_package.my_module:MyExporter")  # doctest: +SKIP

Heavy toolchains (executorch, litert-torch, coremltools, tensorrt) are imported only inside
their exporter module, so a missing one is a clear error for that format alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from edgeprune.errors import EdgepruneError, ExportError
from edgeprune.registry import LazyRegistry


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


@dataclass(frozen=True)
class ExportOptions:
    """What to produce. `calibration` holds real input batches for int8 (a tuple of tuples of tensors)."""

    precision: Precision = Precision.FP32
    calibration: tuple = ()
    opset: int | None = None


@dataclass
class Artifact:
    """One file (or .mlpackage directory) produced by an exporter, plus side files and notes."""

    format: str
    precision: Precision
    path: Path
    side_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Exporter(Protocol):
    name: str
    suffix: str
    precisions: tuple[Precision, ...]

    def export(self, module, example_inputs: tuple, out_path: Path, options: ExportOptions) -> Artifact:
        """Convert `module` for `example_inputs` and write `out_path` atomically."""
        ...


_EXPORTERS = LazyRegistry("export format", {
    "onnx": "edgeprune.exporters.onnx:OnnxExporter",
    "executorch": "edgeprune.exporters.executorch:ExecuTorchExporter",
    "tflite": "edgeprune.exporters.tflite:TFLiteExporter",
    "coreml": "edgeprune.exporters.coreml:CoreMLExporter",
    "tensorrt": "edgeprune.exporters.tensorrt:TensorRTExporter",
})


def register_exporter(name: str, target: str) -> None:
    """Register an exporter class by 'module:Class' path (imported on first use)."""
    _EXPORTERS.register(name, target)


def exporter_names() -> list[str]:
    return _EXPORTERS.names()


def get_exporter(name: str) -> Exporter:
    def missing(e: ImportError) -> ExportError:
        return ExportError(f"format '{name}' needs a package that is not installed ({e.name or e}); "
                           "install edgeprune with its extra, e.g. pip install 'edgeprune[all]'", format=name)

    return _EXPORTERS.load(name, missing=missing)()


def parse_precision(text: str) -> Precision:
    try:
        return Precision(str(text).lower())
    except ValueError:
        raise EdgepruneError(f"unknown precision '{text}'; use one of {', '.join(p.value for p in Precision)}") from None
