"""Kernel time as the runtime's own profiler reports it, for runtimes whose micro-models lie about wall time.

Timed by the wall clock, a micro-model pays for things the same kernel does not pay inside the
model: a layout conversion of its input and output (ONNX Runtime: NCHW <-> NCHWc, ReorderInput /
ReorderOutput, inside a model only at the edges of NCHWc regions; ExecuTorch/XNNPACK: NCHW <-> NHWC
transposes at the delegate's edges, inside a model only at its first and last op), and, on ONNX
Runtime, an unfused activation when the activation's output is the graph's output (ORT fuses
Conv+HardSwish only when the activation does not produce a graph output; alone it becomes
HardSigmoid + Mul). Profiled in-graph on mobilenet_v3_large at 96x96 (this project's AVX-512 host,
1 thread), the wall-clock ORT table priced its convolutions at 1.7x their in-graph time in the
unpruned model but 1.2-1.3x in pruned ones, a mix the per-model calibration cannot undo. So a
node-timed table entry is the sum of the micro-model's profiled node times, layout nodes left out,
with (on ORT) a trailing flatten that keeps the activation fused; the per-inference session cost is
not in it (no call-cost subtraction).
"""

from __future__ import annotations

from torch import nn

from edgeprune.errors import TableError

# (runtime, precision) whose micro-models are node-timed when a table is created (others: wall clock minus
# call cost). Not ORT int8: there the micro-model's edges are QuantizeLinear / Transpose (to NHWC) /
# DequantizeLinear, and a Transpose cannot be told from a transpose kernel by its op name. Not LiteRT:
# its interpreter's op profile is not read here.
NODE_TIMED = frozenset({("onnxruntime", "fp32"), ("executorch", "fp32")})
PROFILED = frozenset({"onnxruntime", "executorch"})  # runtimes whose runners return per-node profiles
# nodes that only move or relabel memory around the kernel under test: ONNX Runtime op types, and the
# name prefixes of XNNPACK's operators in an ExecuTorch profile (NCHW <-> NHWC transposes at the
# delegate's edges; inside a model XNNPACK stays NHWC from the first op to the last)
LAYOUT_OPS = frozenset({"ReorderInput", "ReorderOutput", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
XNNPACK_LAYOUT = ("Transpose (", "Static Reshape", "Copy (")
MODES = ("auto", "nodes", "wall")


def timing_mode(runtime: str, precision: str, asked: str = "auto") -> str:
    """How a new table for `runtime` at `precision` times its micro-models: "nodes" or "wall"."""
    if asked not in MODES:
        raise TableError(f"kernel timing must be one of {', '.join(MODES)} (got {asked!r})")
    if asked == "nodes" and runtime not in PROFILED:
        raise TableError(f"{runtime} gives no per-node profile here; use --kernel-timing wall (or auto) for it")
    if asked != "auto":
        return asked
    return "nodes" if (runtime, precision) in NODE_TIMED else "wall"


def kernel_ms(per_layer: list[dict], kernel_op: str | None = None) -> float:
    """The micro-model's kernel time: its profiled nodes, layout conversions excluded (but a transpose
    kernel's own transpose kept)."""
    def layout(r: dict) -> bool:
        name = str(r.get("name", ""))
        if kernel_op == "transpose" and name.startswith("Transpose ("):
            return False
        return r.get("op") in LAYOUT_OPS or name.startswith(XNNPACK_LAYOUT)
    return sum(float(r["ms"]) for r in per_layer if not layout(r))


class FusedTail(nn.Module):
    """Wraps a micro-model so its last op's output is not the graph output (a flatten follows it)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).flatten(1)


def micro_for_nodes(module: nn.Module, spec: dict, runtime: str = "onnxruntime") -> nn.Module:
    """The micro-model as node timing wants it: on ONNX Runtime, convolutions with an activation get a
    trailing flatten (XNNPACK fuses what it fuses either way)."""
    if runtime == "onnxruntime" and spec.get("op") in ("conv", "dwconv", "gconv") and spec.get("act"):
        return FusedTail(module).eval()
    return module
