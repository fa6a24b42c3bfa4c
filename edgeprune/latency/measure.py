"""Measure a PyTorch module end to end the way it will be deployed: export, then time on a device.

Every latency the product reports (table entries, --validate, the prune check, benchmarks)
goes through here, so "measured" always means the same thing: the runtime's artifact timed by
the device's runner with fixed threads.

    >>> r = measure_module(model, specs, device="host", runtime="onnxruntime")  # doctest: +SKIP
    >>> r.timing.p50_ms                                                          # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

from edgeprune.devices.descriptor import DeviceDescriptor, load_device
from edgeprune.devices.runner import BenchResult, BenchSettings, Runner, get_runner
from edgeprune.errors import EdgepruneError

CLOCKS = ("wall", "cpu")
from edgeprune.models.inputs import InputSpec, example_inputs

# the export format whose artifacts each runtime executes
RUNTIME_FORMAT = {"onnxruntime": "onnx", "executorch": "executorch", "litert": "tflite",
                  "tensorrt": "tensorrt", "coreml": "coreml"}


def export_for_runtime(module, input_specs: Sequence[InputSpec], runtime: str, precision: str, out_path: Path,
                       calibration: tuple = ()) -> Path:
    """Write the artifact `runtime` executes for `module`; returns its path (no parity check: speed only)."""
    from edgeprune.exporters.base import ExportOptions, get_exporter, parse_precision

    if runtime not in RUNTIME_FORMAT:
        raise EdgepruneError(f"unknown runtime '{runtime}'; use one of {', '.join(RUNTIME_FORMAT)}")
    exporter = get_exporter(RUNTIME_FORMAT[runtime])
    prec = parse_precision(precision)
    inputs = example_inputs(tuple(input_specs))
    if prec.value == "int8" and not calibration:
        # timing only: int8 kernels run at the same speed whatever the calibration data was
        calibration = tuple(example_inputs(tuple(input_specs), seed=s) for s in range(2))
    module = module.eval()
    artifact = exporter.export(module, inputs, Path(out_path).with_suffix(exporter.suffix),
                               ExportOptions(precision=prec, calibration=tuple(calibration)))
    return artifact.path


def measure_module(module, input_specs: Sequence[InputSpec], *, device: str | DeviceDescriptor | Runner = "host",
                   runtime: str = "onnxruntime", precision: str = "fp32", settings: BenchSettings | None = None,
                   calibration: tuple = (), workdir: str | Path | None = None, clock: str = "wall") -> BenchResult:
    """Export `module` for `runtime` and time it on `device` (a name, descriptor or open runner).

    clock="cpu" (this host, 1 thread only) times the inference thread's CPU time instead of the
    wall clock; see `cpu_clock_bench`.
    """
    if clock not in CLOCKS:
        raise EdgepruneError(f"unknown clock '{clock}'; use one of {', '.join(CLOCKS)}")
    runner, owned = _runner(device)
    settings = settings or BenchSettings()
    try:
        with tempfile.TemporaryDirectory(prefix="edgeprune-measure-", dir=workdir) as tmp:
            path = export_for_runtime(module, input_specs, runtime, precision, Path(tmp) / "model", calibration)
            if clock == "cpu":
                return cpu_clock_bench(runner, path, runtime, settings)
            return runner.bench(path, runtime, settings)
    finally:
        if owned:
            runner.close()


def _runner(device) -> tuple[Runner, bool]:
    if isinstance(device, (str, DeviceDescriptor)):
        return get_runner(load_device(device) if isinstance(device, str) else device), True
    return device, False


def cpu_clock_supported(runner, threads: int | None) -> bool:
    """The CPU clock is meaningful for in-process runs on one thread (the caller's thread does all the work)."""
    return getattr(getattr(runner, "device", None), "transport", None) == "local" and threads == 1


def cpu_clock_bench(runner, path: Path, runtime: str, settings: BenchSettings) -> BenchResult:
    """Time an artifact by the CPU time of the calling thread (1 thread, this host).

    On a machine shared with other jobs, wall-clock repeats include the time the scheduler gave
    to other processes; long runs (whole models) are hit more often than short ones (one
    kernel), which biases a kernel-sum predictor. With one intra-op thread, ONNX Runtime and
    ExecuTorch/XNNPACK run the whole inference on the caller's thread, so its CPU time is the
    latency an idle machine gives, whoever else runs. The wall-clock median is kept in the
    warnings for reference.
    """
    import time

    import numpy as np

    from edgeprune.runtimes import get_runtime
    from edgeprune.runtimes.timing import summarize

    if not cpu_clock_supported(runner, settings.threads):
        raise EdgepruneError("the CPU clock times in-process runs on 1 thread only; use --threads 1 on this host, "
                             "or the wall clock")
    session = get_runtime(runtime).load(path, threads=1)
    rng = np.random.default_rng(0)
    feeds = [rng.standard_normal(shape).astype(dtype) for shape, dtype in session.input_specs]
    for _ in range(settings.warmup):
        session.run(feeds)
    cpu, wall = [], []
    start = time.perf_counter()
    last = None
    while True:
        w0, c0 = time.perf_counter(), time.thread_time()
        session.run(feeds)
        cpu.append((time.thread_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
        n, elapsed = len(cpu), time.perf_counter() - start
        if n >= settings.max_runs or (elapsed > settings.max_seconds and n >= 3):
            break
        if n >= settings.min_runs and n % max(settings.min_runs // 2, 1) == 0:
            med = float(np.median(cpu))
            if last is not None and abs(med - last) <= settings.rel_tol * last:
                break
            last = med
    timing = summarize(cpu)
    fp = runner.fingerprint(runtime, 1)
    return BenchResult(str(path), runtime, runner.device.name, timing, fp,
                       warnings=[f"cpu clock; wall p50 {float(np.median(wall)):.4f} ms, min {min(wall):.4f} ms"])
