"""Bench artifacts (files or `edgeprune export` directories) on one or several devices at once.

Each device gets its own runner in its own thread; results come back labelled by device and
are merged in a stable order (devices as given, then artifacts as given). A failure on one
device is recorded for that device and does not discard what the others measured.

    >>> rows = bench_targets(["out/"], ["host", "jetson-orin-nano"], BenchSettings())  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from edgeprune.devices.descriptor import DeviceDescriptor, load_device
from edgeprune.devices.runner import BenchResult, BenchSettings, get_runner
from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.runtimes.timing import Timing

# artifact file/dir suffix -> runtime that executes it on a device
SUFFIX_RUNTIME = {".onnx": "onnxruntime", ".pte": "executorch", ".tflite": "litert", ".mlpackage": "coreml",
                  ".mlmodel": "coreml", ".engine": "tensorrt", ".plan": "tensorrt"}


@dataclass(frozen=True)
class Target:
    """One thing to time: an artifact path with the runtime that runs it (a runtime or format may be forced)."""

    path: Path
    runtime: str | None  # None: pick from the device (e.g. .onnx is tensorrt on a TensorRT-only board)
    label: str


@dataclass
class BenchRow:
    device: str
    target: Target
    result: BenchResult | None = None
    error: str | None = None
    key: str = ""  # what was measured, how: lets a later run reuse this row (see bench_targets' `previous`)
    reused: bool = False

    def to_json(self) -> dict:
        out = {"device": self.device, "artifact": str(self.target.path), "label": self.target.label}
        if self.result is not None:
            out.update(self.result.to_json())
        out["error"] = self.error
        out["key"] = self.key
        return out


def row_key(device: str, path: Path, runtime: str, settings: BenchSettings) -> str:
    """Same device, same artifact content, same runtime and settings -> same measurement."""
    from edgeprune.files import sha256_path

    return hashlib.sha256(f"{device}|{sha256_path(path)}|{runtime}|{settings!r}".encode()).hexdigest()[:24]


def _result_from_json(d: dict) -> BenchResult:
    return BenchResult(d["artifact"], d["runtime"], d["device"], Timing(**d["latency_ms"]), d.get("fingerprint", {}),
                       peak_memory_mb=d.get("peak_memory_mb"), per_layer=d.get("per_layer", []),
                       warnings=d.get("warnings", []))


def resolve_targets(paths: list[str]) -> list[Target]:
    """Artifacts given directly, or every successfully exported artifact listed in a DIR/manifest.json."""
    from edgeprune.runtimes import FORMAT_RUNTIME

    targets: list[Target] = []
    for p in map(Path, paths):
        manifest = p / "manifest.json"
        if p.is_dir() and p.suffix != ".mlpackage":
            if not manifest.is_file():
                raise EdgepruneError(f"{p} is a directory without manifest.json; pass artifact files or a directory "
                                     "written by `edgeprune export`")
            from edgeprune.files import read_json

            data = read_json(manifest, "export manifest")
            for a in data.get("artifacts", []):
                if a.get("status") in ("failed", "parity_failed", "skipped") or not a.get("file"):
                    continue
                fmt = a.get("format")
                runtime = "coreml" if fmt == "coreml" else ("tensorrt" if fmt == "tensorrt" else FORMAT_RUNTIME.get(fmt))
                targets.append(Target(p / a["file"], runtime, f"{fmt}/{a.get('precision', '?')}"))
            if not any(t.path.parent == p for t in targets):
                raise EdgepruneError(f"{manifest} lists no exported artifacts; re-run `edgeprune export`")
        elif p.exists():
            runtime = SUFFIX_RUNTIME.get(p.suffix.lower())
            if runtime is None:
                raise EdgepruneError(f"cannot tell which runtime runs {p.name}; use .onnx, .pte, .tflite, .mlpackage, "
                                     ".engine, or pass --runtime")
            targets.append(Target(p, runtime, p.name))
        else:
            raise EdgepruneError(f"artifact not found: {p}")
    return targets


def runtime_on(device: DeviceDescriptor, target: Target, forced: str | None) -> str | None:
    """The runtime to use for `target` on `device`, or None when the device cannot run it (skipped)."""
    if forced:
        return forced
    rt = target.runtime
    if rt == "onnxruntime" and "onnxruntime" not in device.runtimes and "tensorrt" in device.runtimes:
        return "tensorrt"  # the same .onnx, built into an engine on the board
    if rt == "tensorrt" and target.path.suffix == ".onnx" and "tensorrt" not in device.runtimes \
            and "onnxruntime" in device.runtimes:
        return "onnxruntime"
    return rt if rt in device.runtimes else None


def bench_targets(paths: list[str], devices: list[str], settings: BenchSettings, *, runtime: str | None = None,
                  on_row: Callable[[BenchRow], None] | None = None, previous: list[dict] | None = None) -> list[BenchRow]:
    """Time every target on every device; devices in parallel, each device's artifacts in sequence.

    `previous`: rows (to_json) of an earlier, interrupted run; those that measured the same thing
    are reused instead of measured again.
    """
    targets = resolve_targets(paths)
    done = {r["key"]: r for r in previous or [] if r.get("key") and not r.get("error") and r.get("latency_ms")}
    descs = [load_device(d) for d in devices]
    if len({d.name for d in descs}) != len(descs):
        raise EdgepruneError("a device is listed twice in --device; list each once")

    def one_device(dev: DeviceDescriptor) -> list[BenchRow]:
        rows: list[BenchRow] = []
        runner = None
        try:
            for t in targets:
                rt = runtime_on(dev, t, runtime)
                if rt is None:
                    row = BenchRow(dev.name, t, error=f"skipped: {dev.name} has no runtime for {t.path.suffix} "
                                                      f"(it has {', '.join(dev.runtimes)})")
                elif (key := row_key(dev.name, t.path, rt, settings)) in done:
                    row = BenchRow(dev.name, t, result=_result_from_json(done[key]), key=key, reused=True)
                else:
                    try:
                        runner = runner or get_runner(dev)
                        result = runner.bench(t.path, rt, settings)
                        row = BenchRow(dev.name, t, result=result, key=key)
                    except DeviceError as e:
                        row = BenchRow(dev.name, t, error=str(e), key=key)
                rows.append(row)
                if on_row:
                    on_row(row)
        finally:
            if runner is not None:
                runner.close()
        return rows

    with ThreadPoolExecutor(max_workers=max(1, len(descs)), thread_name_prefix="edgeprune-bench") as pool:
        per_device = list(pool.map(one_device, descs))
    return [row for rows in per_device for row in rows]

