"""What a measurement was taken on: a table or result from another fingerprint is not comparable."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_id() -> str | None:
    """This host's microarchitecture and SIMD features (the device agent reports the same for a board)."""
    from edgeprune.devices.agent import cpu_identity

    return cpu_identity()


def runtime_version(runtime: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    dist = {"onnxruntime": "onnxruntime", "executorch": "executorch", "litert": "ai-edge-litert",
            "coreml": "coremltools", "tensorrt": "tensorrt"}.get(runtime, runtime)
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def host_fingerprint(runtime: str, threads: int | None) -> dict:
    """The fields that decide whether two latency measurements are comparable."""
    return {
        "cpu": cpu_model(),
        "cpu_id": cpu_id(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
        "runtime": runtime,
        "runtime_version": runtime_version(runtime),
        "threads": threads,
    }
