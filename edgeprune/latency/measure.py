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

import numpy as np

from edgeprune.devices.descriptor import DeviceDescriptor, load_device
from edgeprune.devices.runner import BenchResult, BenchSettings, Runner, get_runner
from edgeprune.errors import EdgepruneError
from edgeprune.models.inputs import InputSpec, example_inputs

BLOCK_STATISTICS = ("fastest", "median-ratio")  # see measure_interleaved
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
                   calibration: tuple = (), workdir: str | Path | None = None) -> BenchResult:
    """Export `module` for `runtime` and time it on `device` (a name, descriptor or open runner)."""
    runner, owned = _runner(device)
    settings = settings or BenchSettings()
    try:
        with tempfile.TemporaryDirectory(prefix="edgeprune-measure-", dir=workdir) as tmp:
            path = export_for_runtime(module, input_specs, runtime, precision, Path(tmp) / "model", calibration)
            return runner.bench(path, runtime, settings)
    finally:
        if owned:
            runner.close()


def measure_interleaved(modules: Sequence, input_specs: Sequence[InputSpec], *, device: str | DeviceDescriptor | Runner = "host",
                        runtime: str = "onnxruntime", precision: str = "fp32", settings: BenchSettings | None = None,
                        passes: int = 3, workdir: str | Path | None = None, statistic=None,
                        relative_to_first: bool = False, alternate: bool = True,
                        block_statistic: str = "fastest") -> list[float]:
    """End-to-end latency (ms) of each module: the fastest repeat over `passes` rounds, every round
    timing all the modules in turn (each exported once).

    Why rounds: a shared machine's speed changes in phases longer than one measurement (the same
    model's fastest repeat was seen at 0.86 and 1.90 ms two minutes apart), so repeats within one
    measurement cannot see it; rounds spread every model over the same phases, and a ratio of two
    models (a calibration, a predicted-vs-measured error) compares like with like. `statistic` maps a
    Timing to ms (default: latency_of, the tables' statistic).

    `relative_to_first`: every other model's latency is the first one's fastest times the median
    over rounds of the two models' ratio *within* a round. The host's speed switches between
    levels for seconds at a time (bench/results/host_noise.md): two models timed back to back
    share a level far more often than two rounds do, so a per-round ratio is steadier than a ratio
    of per-model minima that may come from different levels. For "is the pruned model 2x faster
    than the one beside it".

    `alternate` (runners with bench_blocks, i.e. this host): within a round the models take turns
    in blocks of a few ms instead of one whole measurement each, and the ratios are per block
    round. On this host that cut the spread of a pruned/dense ratio over repeated measurements
    3-10x at equal time (bench/results/ratio_noise.md). Remote runners time whole measurements
    in turn, as without it.

    `block_statistic` (with blocks): "fastest" (default), each model's fastest block median over all
    block rounds: the latency of the host's quiet level, where a block median is robust to one
    lucky run and the minimum over rounds to the slow levels. "median-ratio": the first model's
    fastest repeat times the median per-block ratio (how protocol 3 of
    bench/predictor_fidelity.py measured). Timing the same two ONNX Runtime models in 6 sessions
    each (mobilenet_v3_large at 96x96 and a random prune, 60 block rounds), each session's fastest
    block median stayed within +-3%, its median block within +-10%: the slow levels slow a small
    model more than a large one, so even a per-block ratio moves with them.
    """
    from edgeprune.latency.builder import latency_of

    statistic = statistic or latency_of
    if block_statistic not in BLOCK_STATISTICS:
        raise EdgepruneError(f"block_statistic must be one of {', '.join(BLOCK_STATISTICS)} (got {block_statistic!r})")

    runner, owned = _runner(device)
    settings = settings or BenchSettings()
    try:
        with tempfile.TemporaryDirectory(prefix="edgeprune-measure-", dir=workdir) as tmp:
            paths = [export_for_runtime(m, input_specs, runtime, precision, Path(tmp) / f"model{i}")
                     for i, m in enumerate(modules)]
            blocks = getattr(runner, "bench_blocks", None) if alternate and len(paths) > 1 else None
            rounds, ratios, fastest = [], [], None
            for _ in range(max(1, passes)):
                if blocks is not None:
                    timings, block_rounds = blocks(paths, runtime, settings)
                    rounds.append([float(statistic(t)) for t in timings])
                    ratios += [[r[i] / r[0] for i in range(len(paths))] for r in block_rounds]
                    low = [min(col) for col in zip(*block_rounds)]
                    fastest = low if fastest is None else [min(a, b) for a, b in zip(fastest, low)]
                else:
                    rounds.append([float(statistic(runner.bench(path, runtime, settings).timing)) for path in paths])
                    ratios.append([r / rounds[-1][0] for r in rounds[-1]])
            best = [min(col) for col in zip(*rounds)]
            if fastest is not None and block_statistic == "fastest":
                return [float(v) for v in fastest]
            if relative_to_first and len(paths) > 1:
                return [best[0]] + [best[0] * float(np.median([r[i] for r in ratios])) for i in range(1, len(paths))]
            return best
    finally:
        if owned:
            runner.close()


def _runner(device) -> tuple[Runner, bool]:
    if isinstance(device, (str, DeviceDescriptor)):
        return get_runner(load_device(device) if isinstance(device, str) else device), True
    return device, False
