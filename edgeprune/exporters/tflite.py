"""TFLite / LiteRT via litert-torch.

fp32: `litert_torch.convert(model, inputs).export(path)`.
fp16: the fp32 model's weights cast to float16 by ai-edge-quantizer (weight-only float casting;
      LiteRT's XNNPACK delegate computes in fp16 where the CPU has it, fp32 otherwise).
int8: litert-torch's PT2E quantizer (symmetric, per-channel weights, static int8 activations),
      calibrated on `ExportOptions.calibration`. The model's inputs and outputs are int8: their
      scale/zero-point are recorded in the artifact details, and `runtimes.litert` applies them.
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.errors import ExportError
from edgeprune.exporters._common import export_program, first_line, operator_in, quiet_converters
from edgeprune.exporters.graph_passes import drop_noop_pads, float_only
from edgeprune.exporters.base import Artifact, ExportOptions, Precision
from edgeprune.files import atomic_output


class TFLiteExporter:
    name = "tflite"
    suffix = ".tflite"
    precisions = (Precision.FP32, Precision.FP16, Precision.INT8)

    def export(self, module, example_inputs: tuple, out_path: Path, options: ExportOptions) -> Artifact:
        if options.precision not in self.precisions:
            raise ExportError(f"tflite export has no {options.precision.value}", format=self.name)
        import litert_torch

        notes: list[str] = []
        details: dict = {}
        with quiet_converters(), atomic_output(out_path) as tmp:
            quant_config = None
            if options.precision is Precision.INT8:
                module, quant_config = _quantize_int8(module, example_inputs, options.calibration)
                notes.append(f"int8 PT2E symmetric per-channel, int8 inputs/outputs, calibrated on "
                             f"{len(options.calibration)} batches")
            try:
                edge = litert_torch.convert(module, tuple(example_inputs), quant_config=quant_config)
                edge.export(str(tmp))
            except ExportError:
                raise
            except Exception as e:
                raise ExportError(f"tflite conversion failed: {first_line(e)}", format=self.name,
                                  operator=operator_in(e)) from None
            if options.precision is Precision.FP16:
                _cast_weights_fp16(tmp)
                notes.append("fp16 weights (ai-edge-quantizer float casting); compute falls back to fp32 where the CPU lacks fp16")
            details["io"] = io_details(tmp)
            details["ops"] = tflite_op_counts(tmp)
        return Artifact(self.name, options.precision, Path(out_path), notes=notes, details=details)


def _quantize_int8(module, example_inputs: tuple, calibration):
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    if not calibration:
        raise ExportError("int8 needs calibration data; pass --calib fashion-mnist (or imagefolder:PATH), "
                          "or --calib-random to calibrate on noise", format="tflite")
    graph = export_program(module, example_inputs, "tflite").module()
    drop_noop_pads(graph)
    try:
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
        prepared = quantize_pt2e.prepare_pt2e(graph, float_only(quantizer))
        for batch in calibration:
            prepared(*batch)
        converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    except Exception as e:
        raise ExportError(f"tflite int8 quantization failed: {first_line(e)}", format="tflite",
                          operator=operator_in(e)) from None
    return converted, quant_config.QuantConfig(pt2e_quantizer=quantizer)


def _cast_weights_fp16(path: Path) -> None:
    from ai_edge_quantizer import qtyping
    from ai_edge_quantizer import quantizer as aeq
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    try:
        q = aeq.Quantizer(str(path))
        q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                 algorithm_key=AlgorithmName.FLOAT_CASTING)
        data = bytes(q.quantize().quantized_model)
    except Exception as e:
        raise ExportError(f"tflite fp16 weight casting failed: {first_line(e)}", format="tflite",
                          operator=operator_in(e)) from None
    path.write_bytes(data)


def io_details(path) -> dict:
    """Input/output dtypes, shapes and int8 quantization parameters, read from the model itself."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))

    def one(d):
        scale, zero = d["quantization"]
        return {"name": d["name"], "shape": [int(x) for x in d["shape"]], "dtype": d["dtype"].__name__,
                "scale": float(scale), "zero_point": int(zero)}

    return {"inputs": [one(d) for d in interp.get_input_details()],
            "outputs": [one(d) for d in interp.get_output_details()]}


def tflite_op_counts(path) -> dict[str, int]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    counts: dict[str, int] = {}
    try:
        for op in interp._get_ops_details():  # noqa: SLF001 - the only op listing the wheel exposes
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    except Exception:  # older/newer interpreters without the listing
        return {}
    return dict(sorted(counts.items()))
