"""Latency tables: measured kernel latencies for one device + runtime + precision, as a JSON file.

    profiles/<device>/<runtime>-<precision>.json
    {
      "schema_version": 1,
      "meta": {"device", "runtime", "precision", "threads", "granularity", "fingerprint": {...},
               "kernel_timing": "nodes" | "wall",          # absent: "wall" (tables from before node timing)
               "profiler_node_ms", "weight_ms_per_mb", ...},  # node-timed ORT: see edgeprune.latency.node_timing
      "call_ms": 0.012,                  # per-invocation cost of the runner (subtracted from wall-timed entries)
      "entries": {"<kernel family>": {"spec": {...}, "dims": 2, "anchors": [[cin, cout]...],
                                      "points": [[cin, cout, ms, runs], ...]}},
      "models":  {"<structure key>": {"name", "anchors": {kernel: [cin, cout]}, "overhead_ms", "scale", ...}}
    }

A kernel family is everything pruning does not change (op, spatial size, kernel, stride, ...);
its points are latencies at the channel counts measured: the micro-model's wall-clock time minus
the runner's call cost, or its profiled node times without layout conversions on a node-timed table
(edgeprune.latency.node_timing). Every write
is atomic (temp file + rename), so a killed build loses at most the measurement in flight.
A table is only valid for the fingerprint it was measured on; loading it elsewhere is refused
unless forced.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterator

from edgeprune.errors import TableError
from edgeprune.files import atomic_write_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# fingerprint fields that must match for two tables/measurements to be comparable
FINGERPRINT_KEYS = ("cpu", "cpu_id", "cores", "machine", "system", "runtime", "runtime_version", "threads", "libraries")


def default_table_path(device: str, runtime: str, precision: str, root: str | Path = "profiles") -> Path:
    return Path(root) / device / f"{runtime}-{precision}.json"


def library_versions(runtime: str) -> dict[str, str]:
    """Versions of the exporter stack that turns a model into the runtime's artifact."""
    from importlib.metadata import PackageNotFoundError, version

    dists = {"onnxruntime": ["torch", "onnx", "onnxscript"], "executorch": ["torch", "executorch", "torchao"],
             "litert": ["torch", "litert-torch"], "coreml": ["torch", "coremltools"],
             "tensorrt": ["torch", "onnx"]}.get(runtime, ["torch"])
    out = {}
    for d in dists:
        try:
            out[d] = version(d)
        except PackageNotFoundError:
            out[d] = "not installed"
    return out


def fingerprint_mismatch(a: dict, b: dict) -> list[str]:
    """Human-readable differences between two fingerprints (empty when comparable)."""
    diffs = []
    for k in FINGERPRINT_KEYS:
        if a.get(k) != b.get(k):
            # a table from before a field was recorded cannot show it was measured on this CPU: refused too
            # (two 'AMD EPYC' VMs of different generations ran this project's kernels 2.7x apart)
            was = "not recorded (an older table)" if k not in a else repr(a.get(k))
            diffs.append(f"{k}: table {was} vs here {b.get(k)!r}")
    return diffs


class LatencyTable:
    """An in-memory table bound to its file; `save()` writes it atomically."""

    def __init__(self, data: dict, path: Path | None = None):
        self.data = data
        self.path = Path(path) if path else None

    # ------------------------------------------------------------ creation / io
    @classmethod
    def new(cls, *, device: str, runtime: str, precision: str, threads: int | None, fingerprint: dict,
            granularity: int, path: Path | None = None) -> "LatencyTable":
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        meta = {"device": device, "runtime": runtime, "precision": precision, "threads": threads,
                "granularity": granularity, "fingerprint": fingerprint, "schema_version": SCHEMA_VERSION,
                "created": now, "updated": now}
        return cls({"schema_version": SCHEMA_VERSION, "meta": meta, "call_ms": None, "entries": {}, "models": {}},
                   path)

    @property
    def meta(self) -> dict:
        return self.data["meta"]

    @property
    def entries(self) -> dict:
        return self.data["entries"]

    @property
    def models(self) -> dict:
        return self.data["models"]

    @property
    def call_ms(self) -> float:
        return float(self.data.get("call_ms") or 0.0)

    def save(self, path: str | Path | None = None) -> Path:
        path = Path(path) if path else self.path
        if path is None:
            raise TableError("this table has no file; pass a path to save()")
        self.meta["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write_json(path, self.data)
        self.path = path
        return path

    # ------------------------------------------------------------ entries
    def points(self, key: str) -> list[list]:
        e = self.entries.get(key)
        return e["points"] if e else []

    def lookup_point(self, key: str, cin: int, cout: int) -> float | None:
        for p in self.points(key):
            if p[0] == cin and p[1] == cout:
                return float(p[2])
        return None

    def add_point(self, key: str, spec: dict, dims: int, cin: int, cout: int, ms: float, runs: int) -> None:
        e = self.entries.setdefault(key, {"spec": spec, "dims": dims, "anchors": [], "points": []})
        e["points"] = [p for p in e["points"] if not (p[0] == cin and p[1] == cout)]
        e["points"].append([int(cin), int(cout), round(float(ms), 6), int(runs)])
        e["points"].sort()

    def add_anchor(self, key: str, cin: int, cout: int) -> None:
        e = self.entries[key]
        if [cin, cout] not in e["anchors"]:
            e["anchors"].append([int(cin), int(cout)])
            e["anchors"].sort()

    def n_points(self) -> int:
        return sum(len(e["points"]) for e in self.entries.values())


def load_table(path: str | Path, force: bool = False, fingerprint: dict | None = None) -> LatencyTable:
    """Read and validate a table; refuse one measured on another fingerprint unless `force`.

    `fingerprint` is the one to compare against (default: this host for the table's runtime and
    threads, which is right for tables of the `host` device; pass the device runner's for others).
    """
    path = Path(path)
    if not path.is_file():
        raise TableError(f"latency table not found: {path}; build it with `edgeprune profile MODEL --input SHAPE "
                         f"--out {path}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TableError(f"latency table {path} is corrupted ({type(e).__name__}: {e}); move it away and rebuild it "
                         "with `edgeprune profile`") from None
    _validate(data, path)
    table = LatencyTable(data, path)
    if fingerprint is None and table.meta.get("device") == "host":
        from edgeprune.devices.fingerprint import host_fingerprint

        fingerprint = {**host_fingerprint(table.meta["runtime"], table.meta.get("threads")),
                       "libraries": library_versions(table.meta["runtime"])}
    if fingerprint is not None:
        diffs = fingerprint_mismatch(table.meta["fingerprint"], fingerprint)
        if diffs:
            if not force:
                raise TableError(f"latency table {path} was measured on another setup ({'; '.join(diffs[:3])}); "
                                 "rebuild it here with `edgeprune profile`, or pass --force-table (force=True) to use "
                                 "it anyway")
            log.warning("using latency table %s from another setup (%s)", path, "; ".join(diffs))
    return table


def _validate(data: Any, path: Path) -> None:
    def bad(why: str):
        raise TableError(f"latency table {path} is corrupted ({why}); move it away and rebuild it with "
                         "`edgeprune profile`")

    if not isinstance(data, dict):
        bad("not a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise TableError(f"latency table {path} has schema_version {version!r}; this edgeprune reads "
                         f"{SCHEMA_VERSION}: rebuild it with `edgeprune profile`")
    for key, typ in (("meta", dict), ("entries", dict), ("models", dict)):
        if not isinstance(data.get(key), typ):
            bad(f"'{key}' missing or not a {typ.__name__}")
    meta = data["meta"]
    for key in ("device", "runtime", "precision", "fingerprint"):
        if key not in meta:
            bad(f"meta.{key} missing")
    for name, e in data["entries"].items():
        if not isinstance(e, dict) or not isinstance(e.get("points"), list) or "spec" not in e:
            bad(f"entry {name[:60]} malformed")
        for p in e["points"]:
            if not (isinstance(p, list) and len(p) >= 3 and all(isinstance(v, (int, float)) for v in p[:3])
                    and p[2] >= 0):
                bad(f"a point of entry {e['spec'].get('op', '?')} is malformed: {p!r}")


@contextlib.contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """One writer per table file: a second build on the same table fails fast instead of racing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TableError(f"another `edgeprune profile` is writing {path}; wait for it to finish") from None
        yield
    finally:
        os.close(fd)
