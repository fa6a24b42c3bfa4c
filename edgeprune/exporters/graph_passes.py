"""Small rewrites of an exported graph that keep PT2E int8 toolchains from tripping on valid models.

Each one fixes a failure seen on a real torchvision model (Swin v1/v2) and changes no result:
- a pad of zero width is an identity, but ExecuTorch 1.5 delegates a zero pad fed by a dequantize
  node to XNNPACK as float with an int8 input, and the program then fails to load
  ("Failed to create StaticConstantPad node ... xnn_status_invalid_parameter");
- PT2E quantizers annotate every input of an elementwise op, integer constants included, and the
  histogram observer cannot observe an int64 tensor ("histogram_cpu" not implemented for 'Long').
"""

from __future__ import annotations

_PADS = ("aten.pad.default", "aten.constant_pad_nd.default")


def drop_noop_pads(graph_module) -> int:
    """Replace pads whose widths are all zero by their input; returns how many were removed."""
    removed = 0
    for node in list(graph_module.graph.nodes):
        if node.op != "call_function" or str(node.target) not in _PADS or len(node.args) < 2:
            continue
        widths = node.args[1]
        if not isinstance(widths, (list, tuple)) or not all(isinstance(w, int) and w == 0 for w in widths):
            continue  # symbolic or non-zero widths: a real pad
        if any(user.op == "output" for user in node.users):
            continue  # the graph's output would alias its input
        node.replace_all_uses_with(node.args[0])
        graph_module.graph.erase_node(node)
        removed += 1
    if removed:
        graph_module.graph.lint()
        graph_module.recompile()
    return removed


def attr_value(graph_module, target: str):
    """The tensor a `get_attr` node names (targets are dotted paths into submodules)."""
    obj = graph_module
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj


def _is_float(node, graph_module) -> bool:
    val = node.meta.get("val") if hasattr(node, "meta") else None
    if val is None and getattr(node, "op", None) == "get_attr":
        val = attr_value(graph_module, node.target)
    dtype = getattr(val, "dtype", None)
    return dtype is None or dtype.is_floating_point


def float_only(quantizer):
    """`quantizer`, with its annotations limited to floating-point tensors (integer inputs stay unobserved)."""
    from torchao.quantization.pt2e.quantizer import Quantizer

    class FloatOnly(Quantizer):
        def transform_for_annotation(self, model):
            return quantizer.transform_for_annotation(model)

        def annotate(self, model):
            model = quantizer.annotate(model)
            for node in model.graph.nodes:
                ann = node.meta.get("quantization_annotation")
                if ann is None:
                    continue
                for inp in [i for i in ann.input_qspec_map if not _is_float(i, model)]:
                    del ann.input_qspec_map[inp]
                if ann.output_qspec is not None and not _is_float(node, model):
                    ann.output_qspec = None
            return model

        def validate(self, model):
            return quantizer.validate(model)

    return FloatOnly()
