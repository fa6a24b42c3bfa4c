"""Native benchmark tools on devices: their command lines and parsers for what they print.

    trtexec              TensorRT engines (Jetson): --exportTimes / --exportProfile JSON, summary text
    benchmark_model      LiteRT's C++ benchmark binary (Android, Linux boards), --enable_op_profiling
    benchmark_litert_model.py  the Python benchmark tool shipped in the ai-edge-litert wheel
    executor_runner      ExecuTorch's runner (Android): total time over --num_executions

Parsers take the tool's text/JSON and return plain data (samples or summary statistics in ms,
per-layer rows {name, op, ms, percent}); a missing field is None, never a guess. Real captured
outputs and format reconstructions live in tests/fixtures/tools/ (each says which it is).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from edgeprune.errors import DeviceError
from edgeprune.runtimes.timing import Timing

_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


@dataclass
class ToolResult:
    """What one tool run reported; `timing` built from samples when the tool gives them, else from its summary."""

    tool: str
    timing: Timing | None
    per_layer: list[dict] = field(default_factory=list)
    peak_memory_mb: float | None = None
    extra: dict = field(default_factory=dict)


def timing_from_summary(*, mean: float, std: float | None = None, min_: float | None = None,
                        p50: float | None = None, p90: float | None = None, p99: float | None = None,
                        runs: int = 0) -> Timing:
    """A Timing from a tool's own summary; percentiles it does not print fall back to the nearest it does."""
    p50 = p50 if p50 is not None else mean
    return Timing(p50_ms=p50, p90_ms=p90 if p90 is not None else p50, p99_ms=p99 if p99 is not None else (p90 or p50),
                  mean_ms=mean, std_ms=std or 0.0, min_ms=min_ if min_ is not None else p50, runs=runs, rejected=0)


def _rows_with_percent(rows: list[dict]) -> list[dict]:
    total = sum(r["ms"] for r in rows) or 1.0
    for r in rows:
        r.setdefault("percent", 100.0 * r["ms"] / total)
    return rows


# --- LiteRT benchmark_model (C++) ---------------------------------------------------------

def benchmark_model_argv(binary: str, graph: str, *, threads: int | None, warmup: int, runs: int,
                         op_profiling: bool = False, use_gpu: bool = False, use_xnnpack: bool = True) -> list[str]:
    argv = [binary, f"--graph={graph}", f"--warmup_runs={warmup}", f"--num_runs={runs}",
            "--report_peak_memory_footprint=true", f"--use_xnnpack={'true' if use_xnnpack else 'false'}"]
    if threads:
        argv.append(f"--num_threads={threads}")
    if use_gpu:
        argv.append("--use_gpu=true")
    if op_profiling:
        argv += ["--enable_op_profiling=true", "--max_profiling_buffer_entries=65536"]
    return argv


_STAT = re.compile(rf"count=(\d+)(?: first=({_NUM}))?(?: curr=({_NUM}))?(?: min=({_NUM}))?(?: max=({_NUM}))?"
                   rf"(?: avg=({_NUM}))?(?: std=({_NUM}))?(?: p5=({_NUM}))?(?: median=({_NUM}))?(?: p95=({_NUM}))?")


def parse_benchmark_model(text: str) -> ToolResult:
    """LiteRT benchmark_model output: the last 'count=... avg=...' line (the timed runs) is in microseconds."""
    stats = None
    for line in text.splitlines():
        if "Timings (microseconds)" in line:
            continue  # the op profiler's own summary, not the end-to-end runs
        m = _STAT.search(line)
        if m and m.group(6) is not None:
            stats = m
    if stats is None:
        raise DeviceError("benchmark_model printed no timing line ('count=... avg=...'); run it by hand on the "
                          "device to see why (wrong --graph path, unsupported op, missing delegate)")
    us = [None if g is None else float(g) / 1000.0 for g in stats.groups()[1:]]
    _first, _curr, mn, mx, avg, std, _p5, median, p95 = us
    # the tool prints p95 and max, not p90/p99: the nearest printed upper values stand in for them
    timing = timing_from_summary(mean=avg, std=std, min_=mn, p50=median, p90=p95, p99=mx, runs=int(stats.group(1)))
    peak = None
    m = re.search(rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUM})", text)
    if m:
        peak = float(m.group(1))
    else:
        m = re.search(rf"Memory footprint delta from the start of the tool \(MB\): init=({_NUM}) overall=({_NUM})", text)
        if m:
            peak = float(m.group(2))
    extra = {}
    m = re.search(rf"Inference timings in us: Init: ({_NUM}), First inference: ({_NUM})", text)
    if m:
        extra = {"init_ms": float(m.group(1)) / 1000.0, "first_inference_ms": float(m.group(2)) / 1000.0}
    return ToolResult("benchmark_model", timing, parse_op_profile(text), peak, extra)


def parse_op_profile(text: str) -> list[dict]:
    """The 'Run Order' table of the regular runs (--enable_op_profiling=true): one row per node, avg ms."""
    marker = text.rfind("Operator-wise Profiling Info for Regular Benchmark Runs")
    section = text[marker:] if marker >= 0 else text
    start = section.find("Run Order")
    if start < 0:
        return []
    rows = []
    header: list[str] | None = None
    for line in section[start:].splitlines()[1:]:
        if not line.strip():
            break
        cells = [c.strip() for c in line.strip().split("\t") if c.strip()]
        if header is None:
            header = [c.strip("[]").lower() for c in cells]
            continue
        row = dict(zip(header, cells))
        try:
            rows.append({"name": row.get("name", ""), "op": row.get("node type", ""), "ms": float(row["avg ms"]),
                         "percent": float(row.get("%", "0").rstrip("%"))})
        except (KeyError, ValueError):
            continue
    return rows


# --- LiteRT's Python benchmark tool (ai_edge_litert.tools.benchmark_litert_model) -----------

def parse_litert_python_benchmark(text: str) -> ToolResult:
    """'Inference (avg):  1.23 ms (50 runs)' etc. from the BENCHMARK RESULTS block."""
    vals = {}
    for key, m in ((m.group(1), m) for m in re.finditer(rf"Inference \((\w+)\):\s+({_NUM}) ms(?: \((\d+) runs\))?", text)):
        vals[key] = float(m.group(2))
        if m.group(3):
            vals["runs"] = int(m.group(3))
    if "avg" not in vals:
        raise DeviceError("benchmark_litert_model printed no 'Inference (avg)' line; run it by hand to see why")
    timing = timing_from_summary(mean=vals["avg"], std=vals.get("std"), min_=vals.get("min"), p50=vals.get("median"),
                                 p90=vals.get("p95"), p99=vals.get("max"), runs=int(vals.get("runs", 0)))
    m = re.search(rf"Model initialization:\s+({_NUM}) ms", text)
    return ToolResult("benchmark_litert_model", timing, [], None, {"init_ms": float(m.group(1))} if m else {})


# --- ExecuTorch executor_runner ------------------------------------------------------------

def executor_runner_argv(binary: str, model: str, *, executions: int, threads: int | None = None,
                         etdump: str | None = None) -> list[str]:
    argv = [binary, f"--model_path={model}", f"--num_executions={executions}"]
    if threads:
        argv.append(f"--cpu_threads={threads}")
    if etdump:
        argv.append(f"--etdump_path={etdump}")
    return argv


_ET_RUN = re.compile(rf"Model executed successfully (\d+) time\(s\)(?: in ({_NUM}) ms)?")


def parse_executor_runner(text: str) -> tuple[int, float | None]:
    """(executions, total ms) from 'Model executed successfully N time(s) in T ms.'; T is None on old runners."""
    m = None
    for m in _ET_RUN.finditer(text):
        pass
    if m is None:
        err = re.search(r"(?:Execution of method \S+ failed|In function .*|Error\w*).*", text)
        raise DeviceError("executor_runner did not finish the model" + (f" ({err.group(0).strip()})" if err else "")
                          + "; check that the runner was built with the kernels/delegates the .pte needs (XNNPACK)")
    return int(m.group(1)), (float(m.group(2)) if m.group(2) else None)


# --- TensorRT trtexec ----------------------------------------------------------------------

def parse_trtexec_times(records: list) -> list[float]:
    """--exportTimes JSON: one record per inference; latencyMs (H2D + compute + D2H) per run."""
    if not isinstance(records, list):
        raise DeviceError("trtexec --exportTimes file is not a JSON list; re-run the bench")
    out = []
    for r in records:
        if isinstance(r, dict):
            if "latencyMs" in r:
                out.append(float(r["latencyMs"]))
            elif "startComputeMs" in r and "endComputeMs" in r:
                out.append(float(r["endComputeMs"]) - float(r["startComputeMs"]))
    return out


def parse_trtexec_profile(records: list) -> list[dict]:
    """--exportProfile JSON: [{"count": N}, {"name", "timeMs", "averageMs", "medianMs"?, "percentage"}, ...]."""
    if not isinstance(records, list):
        return []
    rows = []
    for r in records:
        if isinstance(r, dict) and "name" in r and "averageMs" in r:
            rows.append({"name": str(r["name"]), "op": "", "ms": float(r["averageMs"]),
                         "percent": float(r.get("percentage", 0.0))})
    return _rows_with_percent(rows)


_TRT_LAT = re.compile(rf"\] Latency: min = ({_NUM}) ms, max = ({_NUM}) ms, mean = ({_NUM}) ms, median = ({_NUM}) ms"
                      rf"(?:, percentile\(90%\) = ({_NUM}) ms)?(?:, percentile\(95%\) = ({_NUM}) ms)?"
                      rf"(?:, percentile\(99%\) = ({_NUM}) ms)?")
_TRT_GPU = re.compile(rf"GPU Compute Time: min = ({_NUM}) ms, max = ({_NUM}) ms, mean = ({_NUM}) ms, median = ({_NUM}) ms")


def parse_trtexec_output(text: str) -> ToolResult:
    """The '=== Performance summary ===' block of trtexec's log (used when no --exportTimes file came back)."""
    m = _TRT_LAT.search(text)
    if not m:
        if "&&&& FAILED" in text:
            line = next((ln for ln in text.splitlines() if "[E]" in ln), "")
            raise DeviceError(f"trtexec failed on the device{': ' + line.strip() if line else ''}; run the printed "
                              "command there to see the full log")
        raise DeviceError("trtexec printed no performance summary; run the command on the device to see why")
    mn, _mx, mean, median, p90, _p95, p99 = (None if g is None else float(g) for g in m.groups())
    timing = timing_from_summary(mean=mean, min_=mn, p50=median, p90=p90, p99=p99)
    extra = {}
    g = _TRT_GPU.search(text)
    if g:
        extra["gpu_compute_median_ms"] = float(g.group(4))
    v = re.search(r"TensorRT version: (\S+)", text)
    if v:
        extra["tensorrt_version"] = v.group(1)
    else:
        from edgeprune.devices.agent import trtexec_banner_version

        if trtexec_banner_version(text):
            extra["tensorrt_version"] = trtexec_banner_version(text)
    thr = re.search(rf"Throughput: ({_NUM}) qps", text)
    if thr:
        extra["throughput_qps"] = float(thr.group(1))
    return ToolResult("trtexec", timing, [], None, extra)


def tensorrt_precision(onnx_path) -> str:
    """fp16/int8 are TensorRT build flags, not properties of the ONNX: read them from the exporter's
    `<name>.trtexec.sh` next to the artifact (fp32 when there is none)."""
    from pathlib import Path

    side = Path(onnx_path).with_suffix(".trtexec.sh")
    try:
        args = shlex.split(side.read_text(encoding="utf-8").splitlines()[-1])
    except (OSError, IndexError, ValueError):
        return "fp32"
    return "int8" if "--int8" in args else "fp16" if "--fp16" in args else "fp32"


def shell_join(argv: list[str]) -> str:
    """One remote command line with every argument quoted (no injection from file or model names)."""
    return shlex.join(argv)
