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

Two more things a node-timed ONNX Runtime table measures once, when it is created: what the
profiler itself adds to each node (`profiler_node_ms`, taken off every node of every entry), and
what reading a megabyte of weights from memory adds to a kernel (`weight_ms_per_mb`, which the
predictor charges each conv/linear for its weight bytes: entries are cache-hot, a model's weights
are not).
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
# node-timed tables whose entries are corrected for the profiler's per-node cost (profiler_node_ms)
PROFILER_COST = frozenset({"onnxruntime"})
CHAIN = 64  # elementwise nodes in the profiler-cost probe
# node-timed tables that also price each kernel's weights as read from memory (weight_ms_per_mb)
COLD_WEIGHTS = frozenset({("onnxruntime", "fp32")})
PROBE_WIDTH = 1024  # the probe's linear layer: 1024x1024 fp32, 4.2 MB of weights (above any L2 here)


def timing_mode(runtime: str, precision: str, asked: str = "auto") -> str:
    """How a new table for `runtime` at `precision` times its micro-models: "nodes" or "wall"."""
    if asked not in MODES:
        raise TableError(f"kernel timing must be one of {', '.join(MODES)} (got {asked!r})")
    if asked == "nodes" and runtime not in PROFILED:
        raise TableError(f"{runtime} gives no per-node profile here; use --kernel-timing wall (or auto) for it")
    if asked != "auto":
        return asked
    return "nodes" if (runtime, precision) in NODE_TIMED else "wall"


def kernel_ms(per_layer: list[dict], kernel_op: str | None = None, node_ms: float = 0.0) -> float:
    """The micro-model's kernel time: its profiled nodes, layout conversions excluded (but a transpose
    kernel's own transpose kept), each less the profiler's own cost per node `node_ms`."""
    def layout(r: dict) -> bool:
        name = str(r.get("name", ""))
        if kernel_op == "transpose" and name.startswith("Transpose ("):
            return False
        return r.get("op") in LAYOUT_OPS or name.startswith(XNNPACK_LAYOUT)
    return sum(max(float(r["ms"]) - node_ms, 0.0) for r in per_layer if not layout(r))


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


def weight_ms_per_mb(runner, runtime: str, precision: str, threads: int | None) -> float:
    """What reading 1 MB of weights from memory adds to a kernel, on this runner: a 1024x1024 linear
    layer's profiled time with the caches flushed before each run, minus its time cache-hot, per MB.

    A micro-model timed in a loop keeps its weights in cache; inside a model they were evicted by
    the rest of the inference. Profiled in-graph on ONNX Runtime (mobilenet_v3_large, 96x96, 1
    thread), the classifier's linear layers took 4.5x and 3.8x their micro-model times and the SE
    blocks' 1x1 convs 2.6-3.1x, while convolutions over a spatial map took 1.0-1.5x: the extra is
    the weights' bytes at ~30 GB/s. Flushing before every micro-model instead priced the spatial
    convolutions cold too (their inputs are hot in a model), and the kernel sum went from 0.75x to
    1.5x the measured latency (bench/results/predictor_fidelity_nodes_cold)."""
    import dataclasses

    import torch

    from edgeprune.devices.runner import BenchSettings
    from edgeprune.latency.measure import measure_module
    from edgeprune.models.inputs import InputSpec

    module = torch.nn.Linear(PROBE_WIDTH, PROBE_WIDTH).eval()
    specs = (InputSpec((1, PROBE_WIDTH)),)
    hot = BenchSettings(threads=threads, warmup=3, min_runs=30, max_runs=30, max_seconds=0.5, per_layer=True)
    times = []
    for settings in (hot, dataclasses.replace(hot, cold_cache=True)):
        res = measure_module(module, specs, device=runner, runtime=runtime, precision=precision, settings=settings)
        if not res.per_layer:
            raise TableError(f"{runtime} returned no per-node profile for the weight-read probe; use --kernel-timing wall")
        times.append(kernel_ms(res.per_layer))
    mb = PROBE_WIDTH * PROBE_WIDTH * 4 / 1e6
    return max(0.0, (times[1] - times[0]) / mb)


class _Chain(nn.Module):
    """`n` cheap elementwise nodes in a row (alternately ReLU and a scale-and-shift)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x):
        for i in range(self.n):
            x = x * 1.0001 + 0.5 if i % 2 else x.relu()
        return x


def profiler_node_ms(runner, runtime: str, precision: str, threads: int | None) -> float:
    """What the runtime's profiler adds to each node it times: a chain of CHAIN more cheap nodes adds
    this much more to the profiled node times than to the wall-clock latency, per node.

    ONNX Runtime's profiler records two timestamps and an event per node: on this project's host
    this probe reads 1.7 us per node, as much as a small kernel costs. Node-timed entries carried it once per
    kernel, and a pruned MobileNetV3 (a hundred kernels of a few us each) profiled at 1.1-2.1x its
    wall-clock latency, against 1.0-1.2x unpruned."""
    from edgeprune.devices.runner import BenchSettings
    from edgeprune.latency.measure import measure_module
    from edgeprune.models.inputs import InputSpec

    settings = BenchSettings(threads=threads, warmup=20, min_runs=300, max_runs=300, max_seconds=2.0, per_layer=True)
    wall, prof, nodes = [], [], []
    for n in (2, 2 + CHAIN):
        res = measure_module(_Chain(n).eval(), (InputSpec((1, 64)),), device=runner, runtime=runtime,
                             precision=precision, settings=settings)
        if not res.per_layer:
            raise TableError(f"{runtime} returned no per-node profile for the profiler-cost probe; use --kernel-timing wall")
        wall.append(res.timing.min_ms)
        prof.append(sum(float(r["ms"]) for r in res.per_layer))
        nodes.append(len(res.per_layer))
    if nodes[1] <= nodes[0]:
        raise TableError(f"{runtime} fused the profiler-cost probe's chain into one node; use --kernel-timing wall")
    return max(0.0, ((prof[1] - prof[0]) - (wall[1] - wall[0])) / (nodes[1] - nodes[0]))
