"""ONNX via the torch.onnx dynamo exporter (TorchScript exporter as a fallback, with a warning)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from edgeprune.errors import ExportError
from edgeprune.exporters.base import Artifact, ExportOptions, Precision
from edgeprune.files import atomic_output

log = logging.getLogger(__name__)
DEFAULT_OPSET = 18


class OnnxExporter:
    name = "onnx"
    suffix = ".onnx"
    precisions = (Precision.FP32, Precision.INT8)

    def export(self, module, example_inputs: tuple, out_path: Path, options: ExportOptions) -> Artifact:
        if options.precision not in self.precisions:
            raise ExportError(f"onnx export has no {options.precision.value}; use fp32 or int8", format=self.name)
        notes: list[str] = []
        with atomic_output(out_path) as tmp:
            notes += export_onnx_fp32(module, example_inputs, tmp, opset=options.opset or DEFAULT_OPSET)
        return Artifact(self.name, options.precision, Path(out_path), notes=notes)


def export_onnx_fp32(module, example_inputs: tuple, path: Path, opset: int = DEFAULT_OPSET) -> list[str]:
    """Write a single-file fp32 ONNX model with static shapes; returns notes for the manifest."""
    import onnx
    import torch

    notes: list[str] = []
    names = [f"input_{i}" for i in range(len(example_inputs))] if len(example_inputs) > 1 else ["input"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(module, example_inputs, dynamo=True, opset_version=opset,
                                     input_names=names, verbose=False, optimize=True)
        prog.save(str(path), external_data=False)
    except Exception as e:  # the dynamo exporter fails on some graphs the legacy one handles
        notes.append(f"dynamo exporter failed ({type(e).__name__}); used the TorchScript exporter")
        log.warning("ONNX dynamo export failed (%s: %s); falling back to the TorchScript exporter", type(e).__name__, e)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, example_inputs, str(path), dynamo=False, opset_version=min(opset, 17),
                                  input_names=names, do_constant_folding=True)
        except Exception as e2:
            raise ExportError(f"onnx export failed: {_first_line(e2)}", format="onnx", operator=_operator_in(e2)) from None
    onnx.checker.check_model(str(path))
    return notes


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def _operator_in(e: Exception) -> str | None:
    import re

    m = re.search(r"(aten::?[\w.]+|torch\.ops\.[\w.]+)", str(e))
    return m.group(1) if m else None
