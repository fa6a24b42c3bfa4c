"""TensorRT: a TensorRT-ready ONNX file, and the engine where TensorRT exists.

What this exporter guarantees on any host:
  * ONNX at opset 17 with static shapes (every input/output dim a number), passing
    `onnx.checker.check_model(full_check=True)`;
  * every node's op type is in `TENSORRT_ONNX_OPS` (the "Y" rows of onnx-tensorrt's
    docs/operators.md for TensorRT 10.x) - an unsupported operator is an ExportError naming it;
  * int8 as QDQ ONNX with symmetric (zero-point 0) activations and per-channel weights, which is
    what TensorRT's explicit-quantization path requires;
  * the exact `trtexec` command that builds the engine, written next to the ONNX
    (`<name>.trtexec.sh`).
When `import tensorrt` works and a CUDA GPU is present, the serialized engine is also built
in-process (`<name>.engine`). TensorRT is not installable from PyPI on our build hosts, so there the
artifact stops at the ONNX file + command; parity is checked on that ONNX with ONNX Runtime.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from edgeprune.errors import ExportError
from edgeprune.exporters._common import first_line, quiet_converters
from edgeprune.exporters.base import Artifact, ExportOptions, Precision
from edgeprune.exporters.onnx import EXTERNAL_DATA_BYTES, export_onnx_fp32, onnx_op_counts, quantize_onnx_int8, weight_bytes
from edgeprune.files import atomic_output, atomic_write_text

log = logging.getLogger(__name__)
TENSORRT_OPSET = 17

# ONNX operators the TensorRT 10.x ONNX parser supports (onnx-tensorrt docs/operators.md, "Y" rows).
# Restrictions per op (e.g. Conv weights must be initializers, 2D/3D only) are checked by the parser.
TENSORRT_ONNX_OPS = frozenset("""
Abs Acos Acosh Add AffineGrid And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh
CumSum DeformConv DepthToSpace DequantizeLinear Div Dropout DynamicQuantizeLinear Einsum Elu Equal Erf Exp
Expand EyeLike Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool
GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid
HardSwish Hardmax Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu
Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean
MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike
Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd
ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter
ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign
SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze
Upsample Where Xor
""".split())


class TensorRTExporter:
    name = "tensorrt"
    suffix = ".onnx"
    precisions = (Precision.FP32, Precision.FP16, Precision.INT8)

    def export(self, module, example_inputs: tuple, out_path: Path, options: ExportOptions) -> Artifact:
        if options.precision not in self.precisions:
            raise ExportError(f"tensorrt export has no {options.precision.value}", format=self.name)
        out_path = Path(out_path)
        if weight_bytes(module) > EXTERNAL_DATA_BYTES:  # opset conversion works on the in-memory graph, 2 GB at most
            raise ExportError("tensorrt export of a model with over 2 GB of weights is not supported; export --format "
                              "onnx (weights in a .data file beside it) and build with trtexec --onnx=FILE on the target",
                              format=self.name)
        notes: list[str] = []
        details: dict = {"opset": TENSORRT_OPSET}
        with quiet_converters(), atomic_output(out_path) as tmp:
            if options.precision is Precision.INT8:
                fp32 = tmp.with_name(tmp.name + ".fp32.onnx")
                try:
                    notes += _export_opset17(module, example_inputs, fp32)
                    details.update(quantize_onnx_int8(fp32, tmp, options.calibration, symmetric_activations=True,
                                                      format_name=self.name))
                finally:
                    fp32.unlink(missing_ok=True)
                notes.append("int8 = explicit quantization (QDQ, symmetric activations, per-channel weights)")
            else:
                notes += _export_opset17(module, example_inputs, tmp)
            details.update(check_tensorrt_onnx(tmp))
        shapes = details["input_shapes"]
        engine = out_path.with_suffix(".engine")
        cmd = trtexec_command(out_path, engine, options.precision, shapes)
        details["trtexec"] = cmd
        side = [out_path.with_suffix(".trtexec.sh")]
        atomic_write_text(side[0], "#!/bin/sh\n# Build the TensorRT engine on the target (JetPack: /usr/src/tensorrt/bin/trtexec)\n"
                          f"cd \"$(dirname \"$0\")\" && {cmd_relative(cmd, out_path.parent)}\n")
        side[0].chmod(0o755)
        built = build_engine_if_possible(out_path, engine, options.precision)
        if built:
            side.append(engine)
            notes.append(f"engine built in-process with TensorRT {built}")
            details["engine"] = engine.name
        else:
            notes.append(f"TensorRT is not available on this host: build the engine on the target with {side[0].name}")
        if options.precision is Precision.FP16:
            notes.append("fp16 is a TensorRT build flag (--fp16); the ONNX stays fp32")
        return Artifact(self.name, options.precision, out_path, side_files=side, notes=notes, details=details)


def _export_opset17(module, example_inputs: tuple, path: Path) -> list[str]:
    """ONNX at opset 17 (TensorRT 8.6 / JetPack 5 parse up to 17; TensorRT 10 up to 20).

    The dynamo exporter emits opset 18; it is converted down with onnx's version converter, and
    when that fails (its ReduceMean adapter rejects dynamo's graphs) the TorchScript exporter writes
    opset 17 directly. If both fail, the opset-18 file is kept and the note says it needs TensorRT 10.
    """
    import warnings

    import onnx
    import torch
    from onnx import version_converter

    notes = export_onnx_fp32(module, example_inputs, path, opset=TENSORRT_OPSET)
    model = onnx.load(str(path), load_external_data=False)
    if _opset(model) <= TENSORRT_OPSET:
        return notes
    try:
        converted = version_converter.convert_version(model, TENSORRT_OPSET)
        onnx.checker.check_model(converted, full_check=True)
        onnx.save(converted, str(path))
        return notes + [f"converted to opset {TENSORRT_OPSET} with onnx.version_converter"]
    except Exception as e:
        log.info("tensorrt: version conversion to opset %d failed (%s)", TENSORRT_OPSET, first_line(e))
    legacy = path.with_name(path.name + ".ts.onnx")
    try:
        names = [f"input_{i}" for i in range(len(example_inputs))] if len(example_inputs) > 1 else ["input"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tuple(example_inputs), str(legacy), dynamo=False, opset_version=TENSORRT_OPSET,
                              input_names=names, do_constant_folding=True)
        onnx.checker.check_model(str(legacy), full_check=True)
        legacy.replace(path)
        return [f"opset {TENSORRT_OPSET} via the TorchScript exporter (the dynamo exporter emits opset 18)"]
    except Exception as e:
        log.info("tensorrt: TorchScript export at opset %d failed (%s)", TENSORRT_OPSET, first_line(e))
        return notes + [f"kept opset {_opset(model)}: needs TensorRT 10 (opset {TENSORRT_OPSET} export failed: {first_line(e)})"]
    finally:
        legacy.unlink(missing_ok=True)


def _opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def check_tensorrt_onnx(path) -> dict:
    """Static shapes, checker with full shape inference, and every op in TENSORRT_ONNX_OPS."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise ExportError(f"tensorrt: the ONNX file fails onnx.checker: {str(e).splitlines()[0]}", format="tensorrt") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset > 20:
        raise ExportError(f"tensorrt: ONNX opset {opset} is outside what TensorRT 10 parses (9-20)", format="tensorrt")

    def dims(vi):
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in vi.type.tensor_type.shape.dim]

    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    for vi in list(inputs) + list(model.graph.output):
        if not all(isinstance(d, int) and d > 0 for d in dims(vi)):
            raise ExportError(f"tensorrt: '{vi.name}' has a dynamic shape {dims(vi)}; TensorRT-ready export needs "
                              "static shapes", format="tensorrt")
    counts = onnx_op_counts(path)
    unsupported = sorted(op for op in counts if op not in TENSORRT_ONNX_OPS)
    if unsupported:
        raise ExportError(f"tensorrt: operator(s) TensorRT's ONNX parser does not support: {', '.join(unsupported)}",
                          format="tensorrt", operator=unsupported[0])
    return {"input_shapes": {i.name: dims(i) for i in inputs}, "ops": counts, "opset_in_file": int(opset),
            "checks": ["onnx.checker full_check", "static shapes", "all ops in TensorRT 10 ONNX parser list"]}


def trtexec_command(onnx_path: Path, engine_path: Path, precision: Precision, input_shapes: dict) -> str:
    shapes = ",".join(f"{name}:{'x'.join(str(d) for d in dims)}" for name, dims in input_shapes.items())
    args = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}"]
    if precision is Precision.FP16:
        args.append("--fp16")
    elif precision is Precision.INT8:
        args.append("--int8")  # QDQ nodes carry the scales: no calibration cache needed
    args.append(f"--shapes={shapes}")
    return shlex.join(args)


def cmd_relative(cmd: str, base: Path) -> str:
    """The same command with paths relative to the artifact directory (for the .sh file)."""
    return cmd.replace(f"{base}/", "")


def build_engine_if_possible(onnx_path: Path, engine_path: Path, precision: Precision) -> str | None:
    """Build a serialized engine when TensorRT and a CUDA GPU exist; return the TensorRT version or None."""
    try:
        import tensorrt as trt  # noqa: F401 - only present on NVIDIA hosts (JetPack, NGC images)
    except Exception:
        return None
    try:
        import torch

        if not torch.cuda.is_available():
            return None
    except Exception:
        return None
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(str(trt.__version__).split(".")[0])
    # explicit batch is the only mode in TensorRT 10; 8.x needs the flag
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"tensorrt: the ONNX parser rejected the model: {errs[:300]}", format="tensorrt")
    config = builder.create_builder_config()
    if precision is Precision.FP16:
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision is Precision.INT8:
        config.set_flag(trt.BuilderFlag.INT8)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("tensorrt: engine build failed (see TensorRT's log above)", format="tensorrt")
    with atomic_output(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    return str(trt.__version__)
