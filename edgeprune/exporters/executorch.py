"""ExecuTorch `.pte` lowered to XNNPACK.

fp32: `torch.export` -> `to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])` ->
`.to_executorch()`. int8: `XNNPACKQuantizer` (symmetric, per-channel weights) with torchao's
`prepare_pt2e` / `convert_pt2e`, calibrated on `ExportOptions.calibration`, then the same lowering.
The artifact records how many graph nodes XNNPACK took and which operators stayed on the portable
(slow, reference) kernels.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgeprune.errors import ExportError
from edgeprune.exporters._common import export_program, first_line, operator_in, quiet_converters
from edgeprune.exporters.graph_passes import drop_noop_pads, float_only
from edgeprune.exporters.base import Artifact, ExportOptions, Precision
from edgeprune.files import atomic_output

log = logging.getLogger(__name__)


class ExecuTorchExporter:
    name = "executorch"
    suffix = ".pte"
    precisions = (Precision.FP32, Precision.INT8)

    def export(self, module, example_inputs: tuple, out_path: Path, options: ExportOptions) -> Artifact:
        if options.precision not in self.precisions:
            raise ExportError(f"executorch export has no {options.precision.value}; use fp32 or int8", format=self.name)
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        notes: list[str] = []
        with quiet_converters():
            if options.precision is Precision.INT8:
                module = _quantize_int8(module, example_inputs, options.calibration)
                notes.append(f"int8 XNNPACKQuantizer symmetric per-channel, calibrated on {len(options.calibration)} batches")
            program = export_program(module, example_inputs, self.name)
            try:
                edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner(configs=_partitioner_configs())])
            except Exception as e:
                raise ExportError(f"executorch: lowering to XNNPACK failed: {first_line(e)}", format=self.name,
                                  operator=operator_in(e)) from None
            delegation = delegation_summary(edge)
            try:
                et = edge.to_executorch()
            except Exception as e:
                raise ExportError(f"executorch: to_executorch failed: {first_line(e)}", format=self.name,
                                  operator=operator_in(e)) from None
            with atomic_output(out_path) as tmp:
                with open(tmp, "wb") as f:
                    et.write_to_file(f)
        if delegation["non_delegated_ops"]:
            ops = ", ".join(f"{k} x{v}" for k, v in delegation["non_delegated_ops"].items())
            notes.append(f"not delegated to XNNPACK (portable kernels): {ops}")
        else:
            notes.append("all compute ops delegated to XNNPACK")
        return Artifact(self.name, options.precision, Path(out_path), notes=notes, details={"delegation": delegation})


def _partitioner_configs() -> list:
    """XNNPACK's partitioner configs, except that a pad reading a dequantized tensor stays on the portable
    kernels: ExecuTorch 1.5 delegates it as a float pad with an int8 input, and the program then fails
    to load ("Failed to create StaticConstantPad node ... xnn_status_invalid_parameter"; torchvision's
    swin_v2_t/s at 224x224, whose windows pad the 28x28 and 14x14 stages)."""
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS, ConstantPadConfig
    from executorch.backends.xnnpack.utils.quant_utils import is_dequant

    class FloatInputPadConfig(ConstantPadConfig):
        def check_constraints(self, node, ep) -> bool:
            if any(is_dequant(n) for n in node.all_input_nodes):
                return False
            return super().check_constraints(node, ep)

    return [FloatInputPadConfig if c is ConstantPadConfig else c for c in ALL_PARTITIONER_CONFIGS]


def _quantize_int8(module, example_inputs: tuple, calibration):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if not calibration:
        raise ExportError("int8 needs calibration data; pass --calib fashion-mnist (or imagefolder:PATH), "
                          "or --calib-random to calibrate on noise", format="executorch")
    import executorch.kernels.quantized  # noqa: F401 - out variants of what XNNPACK leaves (Swin V2's position-bias MLP)

    graph = export_program(module, example_inputs, "executorch").module()
    drop_noop_pads(graph)
    try:
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(graph, float_only(quantizer))
        for batch in calibration:
            prepared(*batch)
        return convert_pt2e(prepared)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"executorch int8 quantization failed: {first_line(e)}", format="executorch",
                          operator=operator_in(e)) from None


# bookkeeping nodes that are neither compute nor a delegation decision
_IGNORED = {"getitem", "output", "placeholder"}


def delegation_summary(edge) -> dict:
    """Graph nodes delegated to XNNPACK vs left on portable kernels, per operator."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    delegated, non_delegated = {}, {}
    for op, row in info.delegation_by_operator.items():
        if op in _IGNORED:
            continue
        name = op.removeprefix("aten_").removesuffix("_default")
        if row.delegated:
            delegated[name] = int(row.delegated)
        if row.non_delegated:
            non_delegated[name] = int(row.non_delegated)
    return {
        "delegated_subgraphs": int(info.num_delegated_subgraphs),
        "delegated_nodes": sum(delegated.values()),
        "non_delegated_nodes": sum(non_delegated.values()),
        "delegated_ops": dict(sorted(delegated.items())),
        "non_delegated_ops": dict(sorted(non_delegated.items())),
    }
