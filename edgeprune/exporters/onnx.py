"""ONNX via the torch.onnx dynamo exporter (TorchScript exporter as a fallback, with a warning).

int8 is ONNX Runtime static quantization: `quant_pre_process` (shape inference + graph
optimisation), then `quantize_static` in QDQ format with per-channel int8 weights, calibrated
(MinMax) on the real batches in `ExportOptions.calibration`.

Protobuf cannot serialize a message over 2 GiB, so a model whose weights come near that size
(vit_h_14, regnet_y_128gf) keeps them in a side file `<artifact>.data`, written under its final
name (the graph refers to it by name) and listed in the manifest with its own hash.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from edgeprune.errors import ExportError
from edgeprune.exporters.base import Artifact, ExportOptions, Precision
from edgeprune.exporters._common import first_line, operator_in, quiet_converters
from edgeprune.files import atomic_output

log = logging.getLogger(__name__)
DEFAULT_OPSET = 18
EXTERNAL_DATA_BYTES = 2**31 - 2**27  # weights above this go to a side file (headroom for the graph itself)


class OnnxExporter:
    name = "onnx"
    suffix = ".onnx"
    precisions = (Precision.FP32, Precision.INT8)

    def export(self, module, example_inputs: tuple, out_path: Path, options: ExportOptions) -> Artifact:
        if options.precision not in self.precisions:
            raise ExportError(f"onnx export has no {options.precision.value}; use fp32 or int8", format=self.name)
        out_path = Path(out_path)
        notes: list[str] = []
        details: dict = {}
        large = weight_bytes(module) > EXTERNAL_DATA_BYTES
        side = data_file(out_path)
        with quiet_converters(), atomic_output(out_path) as tmp:
            if options.precision is Precision.FP32:
                notes += export_onnx_fp32(module, example_inputs, tmp, opset=options.opset or DEFAULT_OPSET,
                                          external_data=large)
            else:
                fp32 = tmp.with_name(tmp.name + ".fp32.onnx")
                try:
                    notes += export_onnx_fp32(module, example_inputs, fp32, opset=options.opset or DEFAULT_OPSET,
                                              external_data=large)
                    details = quantize_onnx_int8(fp32, tmp, options.calibration, external_data=large)
                finally:
                    _remove_with_data(fp32)
                notes.append(f"int8 QDQ per-channel, calibrated on {len(options.calibration)} batches")
            if large:
                store_weights_beside(tmp, side)
                notes.append(f"weights in {side.name} (the model is over 2 GB; keep the two files together)")
        if not large:  # a data file of an earlier export must not outlive its graph (kept if this export fails)
            side.unlink(missing_ok=True)
        details["ops"] = onnx_op_counts(out_path)
        return Artifact(self.name, options.precision, out_path, side_files=[side] if large else [], notes=notes,
                        details=details)


def weight_bytes(module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def data_file(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".data")


def _tensors(graph):
    """Every tensor a graph holds: initializers and constant attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _tensors(g)


def _external_locations(path: Path) -> set[str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {e.value for t in _tensors(model.graph) for e in t.external_data if e.key == "location"}


def _remove_with_data(path: Path) -> None:
    """Remove an intermediate ONNX file and every data file it refers to."""
    if path.exists():
        for loc in _external_locations(path):
            (path.parent / loc).unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def store_weights_beside(onnx_path: Path, data: Path) -> None:
    """Rewrite `onnx_path` (a temp name) so that its weights live in `data` (the final side-file name)."""
    import onnx

    if data.parent != onnx_path.parent:
        raise ValueError("the data file must sit next to the ONNX file")
    old = _external_locations(onnx_path)
    model = onnx.load(str(onnx_path))  # with its weights, wherever the exporter put them
    data.unlink(missing_ok=True)  # onnx appends to an existing data file: an earlier export's would stay inside
    onnx.save_model(model, str(onnx_path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024)
    for loc in old - {data.name}:
        (onnx_path.parent / loc).unlink(missing_ok=True)


def quantize_onnx_int8(fp32_path: Path, out_path: Path, calibration, *, symmetric_activations: bool = False,
                       format_name: str = "onnx", external_data: bool = False) -> dict:
    """Static int8 QDQ quantization of an fp32 ONNX file with ONNX Runtime's tools.

    `symmetric_activations=True` gives zero-point-0 activations, which TensorRT requires.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ExportError("int8 needs calibration data; pass --calib fashion-mnist (or imagefolder:PATH), "
                          "or --calib-random to calibrate on noise", format=format_name)
    names = [i.name for i in onnx.load(str(fp32_path), load_external_data=False).graph.input]

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{n: t.detach().cpu().numpy() for n, t in zip(names, batch)} for batch in calibration])

        def get_next(self):
            return next(self._it, None)

    pre = fp32_path.with_name(fp32_path.name + ".pre.onnx")
    try:
        try:
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True, save_as_external_data=external_data,
                              all_tensors_to_one_file=True, external_data_location=pre.name + ".data")
            src = pre
        except Exception as e:  # pre-processing is an optimisation; quantize the plain graph instead
            log.warning("quant_pre_process failed (%s); quantizing without it", first_line(e))
            src = fp32_path
        try:
            quantize_static(str(src), str(out_path), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, use_external_data_format=external_data,
                            extra_options={"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True})
        except Exception as e:
            raise ExportError(f"{format_name} int8 quantization failed: {first_line(e)}", format=format_name,
                              operator=operator_in(e)) from None
    finally:
        _remove_with_data(pre)
    return {"quantization": {"method": "onnxruntime quantize_static", "format": "QDQ", "per_channel": True,
                             "activations": "int8 symmetric" if symmetric_activations else "int8 asymmetric",
                             "weights": "int8 symmetric", "calibration_batches": len(calibration)}}


def onnx_op_counts(path) -> dict[str, int]:
    """How many nodes of each op type the (top-level) graph has."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def export_onnx_fp32(module, example_inputs: tuple, path: Path, opset: int = DEFAULT_OPSET,
                     external_data: bool = False) -> list[str]:
    """Write an fp32 ONNX model with static shapes (weights in a data file beside it when `external_data`);
    returns notes for the manifest."""
    import onnx
    import torch

    notes: list[str] = []
    names = [f"input_{i}" for i in range(len(example_inputs))] if len(example_inputs) > 1 else ["input"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(module, example_inputs, dynamo=True, opset_version=opset,
                                     input_names=names, verbose=False, optimize=True)
        prog.save(str(path), external_data=external_data)
    except Exception as e:  # the dynamo exporter fails on some graphs the legacy one handles
        notes.append(f"dynamo exporter failed ({type(e).__name__}); used the TorchScript exporter")
        log.warning("ONNX dynamo export failed (%s: %s); falling back to the TorchScript exporter", type(e).__name__, e)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, example_inputs, str(path), dynamo=False, opset_version=min(opset, 17),
                                  input_names=names, do_constant_folding=True)
        except Exception as e2:
            raise ExportError(f"onnx export failed: {first_line(e2)}", format="onnx", operator=operator_in(e2)) from None
    onnx.checker.check_model(str(path))
    return notes
