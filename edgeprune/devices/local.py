"""The local transport: artifacts timed in-process on this machine's runtimes."""

from __future__ import annotations

import resource
from pathlib import Path

from edgeprune.devices.descriptor import DeviceDescriptor
from edgeprune.devices.fingerprint import host_fingerprint
from edgeprune.devices.runner import BenchResult, BenchSettings
from edgeprune.errors import DeviceError
from edgeprune.runtimes.timing import measure


class LocalRunner:
    def __init__(self, device: DeviceDescriptor):
        self.device = device

    def fingerprint(self, runtime: str, threads: int | None = None) -> dict:
        return host_fingerprint(runtime, threads or self.device.threads)

    def bench(self, artifact, runtime: str, settings: BenchSettings = BenchSettings(), inputs: list | None = None) -> BenchResult:
        from edgeprune.runtimes import get_runtime

        self.device.require_runtime(runtime)
        path = Path(artifact)
        if not path.exists():
            raise DeviceError(f"artifact not found: {path}")
        threads = settings.threads or self.device.threads
        session = get_runtime(runtime).load(path, threads=threads)
        feeds = inputs if inputs is not None else _random_inputs(session)
        timing = measure(lambda: session.run(feeds), warmup=settings.warmup, min_runs=settings.min_runs,
                         max_runs=settings.max_runs, max_seconds=settings.max_seconds, rel_tol=settings.rel_tol)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        warnings = []
        if timing.p50_ms > 0 and timing.std_ms / timing.p50_ms > 0.15:
            warnings.append(f"noisy run: std is {100 * timing.std_ms / timing.p50_ms:.0f}% of the median")
        if not self.device.clocks_pinned:
            warnings.append("clocks are not pinned on this device")
        return BenchResult(str(path), runtime, self.device.name, timing, self.fingerprint(runtime, threads),
                           peak_memory_mb=peak_mb, warnings=warnings)

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
