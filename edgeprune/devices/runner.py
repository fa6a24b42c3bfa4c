"""One runner interface for every device: measure an artifact there, return a BenchResult.

    >>> runner = get_runner(load_device("host"))                      # doctest: +SKIP
    >>> result = runner.bench("model.onnx", "onnxruntime", threads=2)  # doctest: +SKIP
    >>> result.timing.p50_ms                                          # doctest: +SKIP

Transports (local, ssh, adb) register by name and are imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgeprune.devices.descriptor import DeviceDescriptor, load_device
from edgeprune.errors import DeviceError
from edgeprune.registry import LazyRegistry
from edgeprune.runtimes.timing import Timing


@dataclass(frozen=True)
class BenchSettings:
    """How to time: warm-up, then repeat until the median is stable or a cap is hit."""

    threads: int | None = None
    warmup: int = 3
    min_runs: int = 10
    max_runs: int = 200
    max_seconds: float = 5.0
    rel_tol: float = 0.01
    per_layer: bool = False
    # per-layer runs each start with a cache flushed by a 64 MB write (weights read from memory, as a
    # layer deep inside a model reads them); the ONNX Runtime and ExecuTorch profiles honour it
    cold_cache: bool = False


@dataclass
class BenchResult:
    artifact: str
    runtime: str
    device: str
    timing: Timing
    fingerprint: dict[str, Any]
    peak_memory_mb: float | None = None
    per_layer: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "artifact": self.artifact, "runtime": self.runtime, "device": self.device,
            "latency_ms": self.timing.to_json(), "fingerprint": self.fingerprint,
            "peak_memory_mb": self.peak_memory_mb, "per_layer": self.per_layer, "warnings": self.warnings,
        }


class Runner(Protocol):
    device: DeviceDescriptor

    def fingerprint(self, runtime: str, threads: int | None = None) -> dict: ...

    def bench(self, artifact: str | Path, runtime: str, settings: BenchSettings = BenchSettings()) -> BenchResult: ...

    def close(self) -> None: ...


_TRANSPORTS = LazyRegistry("transport", {
    "local": "edgeprune.devices.local:LocalRunner",
    "ssh": "edgeprune.devices.ssh:SshRunner",
    "adb": "edgeprune.devices.adb:AdbRunner",
}, error=DeviceError)


def register_transport(name: str, target: str) -> None:
    _TRANSPORTS.register(name, target)


def get_runner(device: DeviceDescriptor | str) -> Runner:
    if isinstance(device, str):
        device = load_device(device)

    def missing(e: ImportError) -> DeviceError:
        return DeviceError(f"the '{device.transport}' transport is not available in this edgeprune build ({e.name or e})")

    return _TRANSPORTS.load(device.transport, context=f"device '{device.name}'", missing=missing)(device)
