"""The local transport: artifacts timed in-process on this machine's runtimes."""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path

from edgeprune.devices.descriptor import DeviceDescriptor
from edgeprune.devices.fingerprint import host_fingerprint
from edgeprune.devices.runner import BenchResult, BenchSettings
from edgeprune.errors import DeviceError
from edgeprune.runtimes.timing import Timing, measure, summarize

BLOCK_RUNS = 12   # runs per artifact per block in bench_blocks (a few ms for a small model)
BLOCK_SKIP = 2    # cold runs dropped at the start of each block


class LocalRunner:
    def __init__(self, device: DeviceDescriptor):
        self.device = device

    def fingerprint(self, runtime: str, threads: int | None = None) -> dict:
        return host_fingerprint(runtime, threads or self.device.threads)

    def _load(self, artifact, runtime: str, settings: BenchSettings):
        """(path, session, threads) of an artifact loaded on this host's runtime."""
        from edgeprune.runtimes import get_runtime

        self.device.require_runtime(runtime)
        path = Path(artifact)
        if not path.exists():
            raise DeviceError(f"artifact not found: {path}")
        threads = settings.threads or self.device.threads
        return path, get_runtime(runtime).load(path, threads=threads), threads

    def bench(self, artifact, runtime: str, settings: BenchSettings = BenchSettings(), inputs: list | None = None) -> BenchResult:
        path, session, threads = self._load(artifact, runtime, settings)
        feeds = inputs if inputs is not None else _random_inputs(session)
        timing = measure(lambda: session.run(feeds), warmup=settings.warmup, min_runs=settings.min_runs,
                         max_runs=settings.max_runs, max_seconds=settings.max_seconds, rel_tol=settings.rel_tol)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        warnings = []
        if timing.p50_ms > 0 and timing.std_ms / timing.p50_ms > 0.15:
            warnings.append(f"noisy run: std is {100 * timing.std_ms / timing.p50_ms:.0f}% of the median")
        if not self.device.clocks_pinned:
            warnings.append("clocks are not pinned on this device")
        per_layer = (local_layers(path, runtime, threads, runs=settings.min_runs, cold_cache=settings.cold_cache)
                     if settings.per_layer else [])
        return BenchResult(str(path), runtime, self.device.name, timing, self.fingerprint(runtime, threads),
                           peak_memory_mb=peak_mb, per_layer=per_layer, warnings=warnings)

    def bench_blocks(self, artifacts, runtime: str, settings: BenchSettings = BenchSettings(),
                     block: int = BLOCK_RUNS) -> tuple[list[Timing], list[list[float]]]:
        """Time several artifacts in short blocks in turn (A x block, B x block, ..., again): per
        artifact a Timing over its warm runs, and per block round the median of each artifact's block.

        Why: this host switches speed levels for seconds at a time; blocks of a few ms put every
        artifact of a block round on the same level, so their ratio cancels it (two whole
        measurements seconds apart often do not). The first BLOCK_SKIP runs of a block are dropped:
        the artifact before it evicted this one's weights from cache, which a deployed model that
        runs alone never pays. Stops once every artifact has min_runs warm runs and either
        max_runs of them or max_seconds per artifact have passed.
        """
        runs = []
        for artifact in artifacts:
            _, session, _ = self._load(artifact, runtime, settings)
            feeds = _random_inputs(session)
            for _ in range(settings.warmup):
                session.run(feeds)
            runs.append((session, feeds))
        keep = max(1, block - BLOCK_SKIP)
        samples: list[list[float]] = [[] for _ in runs]
        rounds: list[list[float]] = []
        start = time.perf_counter()
        while True:
            medians = []
            for (session, feeds), kept in zip(runs, samples):
                times = []
                for _ in range(block):
                    t0 = time.perf_counter()
                    session.run(feeds)
                    times.append((time.perf_counter() - t0) * 1e3)
                kept.extend(times[-keep:])
                medians.append(statistics.median(times[-keep:]))
            rounds.append(medians)
            n = len(samples[0])
            if n >= settings.min_runs and (n >= settings.max_runs
                                           or time.perf_counter() - start > settings.max_seconds * len(runs)):
                break
        return [summarize(s) for s in samples], rounds

    def close(self) -> None:
        pass


def _random_inputs(session) -> list:
    """Inputs shaped from the session's own signature, when the runtime exposes one."""
    shapes = getattr(session, "input_specs", None)
    if shapes is None:
        raise DeviceError("this runtime session does not expose its input shapes; pass inputs explicitly")
    import numpy as np

    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(dtype) for shape, dtype in shapes]


def local_layers(path: Path, runtime: str, threads: int | None, runs: int = 5, cold_cache: bool = False) -> list[dict]:
    """Per-layer times on this machine, from the same profilers the on-device agent uses (ORT, ETDump);
    at least `runs` profiled runs."""
    import argparse

    from edgeprune.devices import agent

    if runtime not in ("onnxruntime", "executorch"):
        return []
    args = argparse.Namespace(threads=threads, warmup=1, min_runs=max(5, runs), max_runs=max(20, runs),
                              max_seconds=0.5, rel_tol=0.05, per_layer=True, cold_cache=cold_cache)
    try:
        return agent.BENCHES[runtime](str(path), args).get("per_layer", [])
    except agent.AgentError as e:
        raise DeviceError(f"per-layer profiling of {path.name} failed: {e}") from None
