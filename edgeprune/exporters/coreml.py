"""Core ML `.mlpackage` (ML program) via coremltools 9.

Converted from the `torch.export` program after `run_decompositions({})` (torch.jit.trace as a
fallback, with a note). fp32 / fp16 set `compute_precision`; int8 is fp32 conversion followed by
`coremltools.optimize.coreml.linear_quantize_weights` (symmetric per-channel int8 weights,
activations stay float). coremltools can *predict* only on macOS: on other systems
`check_structure` verifies the package loads and its inputs/outputs match the PyTorch model.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgeprune.errors import ExportError, VerificationError
from edgeprune.exporters._common import first_line, operator_in, quiet_converters
from edgeprune.exporters.base import Artifact, ExportOptions, Precision
from edgeprune.files import atomic_output

log = logging.getLogger(__name__)
DEPLOYMENT_TARGET = "iOS16"  # ML program with fp16 compute; macOS 13 / iOS 16 and newer


class CoreMLExporter:
    name = "coreml"
    suffix = ".mlpackage"
    precisions = (Precision.FP32, Precision.FP16, Precision.INT8)

    def export(self, module, example_inputs: tuple, out_path: Path, options: ExportOptions) -> Artifact:
        if options.precision not in self.precisions:
            raise ExportError(f"coreml export has no {options.precision.value}", format=self.name)
        import coremltools as ct

        notes: list[str] = []
        compute = ct.precision.FLOAT16 if options.precision is Precision.FP16 else ct.precision.FLOAT32
        with quiet_converters():  # also keeps coremltools' per-pass tqdm bars off the terminal
            mlmodel, how = _convert(module, example_inputs, compute)
            if how != "torch.export":
                notes.append(f"converted via {how}")
            if options.precision is Precision.INT8:
                import coremltools.optimize.coreml as cto

                cfg = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
                    mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=0))
                try:
                    mlmodel = cto.linear_quantize_weights(mlmodel, config=cfg)
                except Exception as e:
                    raise ExportError(f"coreml int8 weight quantization failed: {first_line(e)}", format=self.name,
                                      operator=operator_in(e)) from None
                notes.append("int8 weights (linear_quantize_weights, symmetric per-channel); activations fp32; "
                             "no calibration needed")
            with atomic_output(out_path) as tmp:
                staged = tmp.with_name(tmp.name + ".mlpackage")  # coremltools insists on the extension
                try:
                    mlmodel.save(str(staged))
                    staged.rename(tmp)
                finally:
                    if staged.exists():
                        import shutil

                        shutil.rmtree(staged, ignore_errors=True)
        notes.append(f"compute precision {'fp16' if compute == ct.precision.FLOAT16 else 'fp32'}, "
                     f"deployment target {DEPLOYMENT_TARGET}")
        return Artifact(self.name, options.precision, Path(out_path), notes=notes,
                        details={"structure": describe(out_path), "converted_via": how})


def _register_missing_ops() -> None:
    """Translations coremltools 9 lacks for ops torch.export emits (Swin: `alias`, and `zero` from
    `tensor.zero_()`); both map onto coremltools' own translations of their equivalents."""
    from coremltools.converters.mil.frontend.torch import ops
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY, register_torch_op

    def alias(context, node):  # a view with the same shape and values
        ops.noop(context, node)

    def zero(context, node):  # functional form of tensor.zero_()
        ops.zeros_like(context, node)

    for fn in (alias, zero):
        if _TORCH_OPS_REGISTRY.get_func(fn.__name__) is None:
            register_torch_op(fn)


def _convert(module, example_inputs: tuple, compute):
    import coremltools as ct
    import torch

    _register_missing_ops()
    target = getattr(ct.target, DEPLOYMENT_TARGET)
    try:
        program = torch.export.export(module, tuple(example_inputs), strict=False).run_decompositions({})
        return ct.convert(program, convert_to="mlprogram", minimum_deployment_target=target,
                          compute_precision=compute), "torch.export"
    except Exception as e:
        first = e
        log.info("coreml: conversion from torch.export failed (%s); trying torch.jit.trace", first_line(e))
    try:
        traced = torch.jit.trace(module, tuple(example_inputs))
        inputs = [ct.TensorType(name=f"input_{i}" if len(example_inputs) > 1 else "input", shape=tuple(x.shape))
                  for i, x in enumerate(example_inputs)]
        return ct.convert(traced, inputs=inputs, convert_to="mlprogram", minimum_deployment_target=target,
                          compute_precision=compute), "torch.jit.trace (torch.export path failed)"
    except Exception:
        raise ExportError(f"coreml conversion failed: {first_line(first)}", format="coreml",
                          operator=operator_in(first)) from None


def describe(path) -> dict:
    """Inputs/outputs (names, shapes, dtypes), spec version and op types of an .mlpackage, without running it."""
    import coremltools as ct

    try:
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    except Exception as e:
        raise VerificationError(f"coreml package {path} cannot be read ({first_line(e)}); re-export it") from None
    dtypes = {65568: "float32", 65552: "float16", 131104: "int32"}

    def arr(f):
        t = f.type.multiArrayType
        return {"name": f.name, "shape": [int(d) for d in t.shape], "dtype": dtypes.get(int(t.dataType), str(t.dataType))}

    ops: dict[str, int] = {}
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                ops[op.type] = ops.get(op.type, 0) + 1
    return {"inputs": [arr(f) for f in spec.description.input], "outputs": [arr(f) for f in spec.description.output],
            "specification_version": int(spec.specificationVersion), "ops": dict(sorted(ops.items()))}


def check_structure(path, input_shapes: list[tuple], output_shapes: list[tuple]) -> dict:
    """The package loads and its input/output shapes equal the PyTorch model's: returns a parity-style dict."""
    d = describe(path)
    got_in = [tuple(i["shape"]) for i in d["inputs"]]
    got_out = [tuple(o["shape"]) for o in d["outputs"]]
    problems = []
    if got_in != [tuple(s) for s in input_shapes]:
        problems.append(f"inputs {got_in} != expected {list(map(tuple, input_shapes))}")
    if got_out != [tuple(s) for s in output_shapes]:
        problems.append(f"outputs {got_out} != expected {list(map(tuple, output_shapes))}")
    n_compute = sum(v for k, v in d["ops"].items() if k != "const")
    if n_compute == 0:
        problems.append("the program has no compute ops")
    return {"method": "structural (Core ML prediction needs macOS)", "passed": not problems,
            "problems": problems, "inputs": got_in, "outputs": got_out, "ops": n_compute}
