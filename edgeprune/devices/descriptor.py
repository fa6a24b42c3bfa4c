"""Device descriptors: TOML files in devices/ (or any path) saying how to reach a target.

    name = "jetson-orin-nano"
    description = "..."
    [connection]            # transport = "local" | "ssh" | "adb", plus that transport's keys
    transport = "ssh"
    host = "192.168.55.1"
    [runtimes]
    available = ["tensorrt", "onnxruntime"]
    [compute]
    threads = 6
    [clocks]
    pinned = false
    notes = "sudo nvpmodel -m 0 && sudo jetson_clocks before building tables"

Unknown keys are errors (a typo must not be silently ignored).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.errors import DeviceError

SCHEMA_VERSION = 1
TRANSPORTS = ("local", "ssh", "adb")
RUNTIMES = ("onnxruntime", "executorch", "litert", "tensorrt", "coreml")

# transport -> {key: (type, required, default)}
_CONNECTION_KEYS: dict[str, dict[str, tuple[type | tuple, bool, Any]]] = {
    "local": {"transport": (str, True, "local")},
    "ssh": {
        "transport": (str, True, "ssh"),
        "host": (str, True, None),
        "port": (int, False, 22),
        "user": (str, False, None),
        "identity_file": (str, False, None),
        "known_hosts": (str, False, "strict"),  # strict | accept-new | path to a known_hosts file
        "workdir": (str, False, "/tmp/edgeprune"),
        "python": (str, False, "python3"),
        "connect_timeout_s": (int, False, 10),
        "command_timeout_s": (int, False, 600),
        "trtexec": (str, False, "/usr/src/tensorrt/bin/trtexec"),
    },
    "adb": {
        "transport": (str, True, "adb"),
        "serial": (str, False, None),
        "adb": (str, False, "adb"),
        "workdir": (str, False, "/data/local/tmp/edgeprune"),
        "benchmark_model": (str, False, "/data/local/tmp/benchmark_model"),
        "executor_runner": (str, False, "/data/local/tmp/executor_runner"),
        "command_timeout_s": (int, False, 600),
    },
}
_TOP_KEYS = {"schema_version", "name", "description", "connection", "runtimes", "compute", "clocks", "notes"}
_SECTION_KEYS = {
    "runtimes": {"available": (list, True, None), "default": (str, False, None)},
    "compute": {"threads": (int, False, None), "cpu": (str, False, None), "accelerator": (str, False, None),
                "memory_gb": ((int, float), False, None)},
    "clocks": {"pinned": (bool, False, False), "notes": (str, False, "")},
}


@dataclass(frozen=True)
class DeviceDescriptor:
    """A validated device: where it is, how to reach it, what it runs."""

    name: str
    transport: str
    connection: dict[str, Any]
    runtimes: tuple[str, ...]
    default_runtime: str | None = None
    threads: int | None = None
    description: str = ""
    clocks_pinned: bool = False
    clock_notes: str = ""
    compute: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def require_runtime(self, runtime: str) -> None:
        if runtime not in self.runtimes:
            raise DeviceError(
                f"device '{self.name}' has no runtime '{runtime}' (it has: {', '.join(self.runtimes)}); "
                f"pick one of those or add it to [runtimes].available in {self.source or 'its descriptor'}"
            )


def devices_dirs() -> list[Path]:
    """Where descriptors are looked up: $EDGEPRUNE_DEVICES (os.pathsep-separated), ./devices, the repo's devices/."""
    dirs = [Path(p) for p in os.environ.get("EDGEPRUNE_DEVICES", "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "devices")
    dirs.append(Path(__file__).resolve().parents[2] / "devices")
    seen, out = set(), []
    for d in dirs:
        r = d.resolve()
        if r not in seen and d.is_dir():
            seen.add(r)
            out.append(d)
    return out


def list_devices() -> list[DeviceDescriptor]:
    found: dict[str, DeviceDescriptor] = {}
    for d in devices_dirs():
        for f in sorted(d.glob("*.toml")):
            dev = load_descriptor_file(f)
            found.setdefault(dev.name, dev)
    return list(found.values())


def load_device(name_or_path: str) -> DeviceDescriptor:
    """A descriptor by name (from devices/) or by path to a .toml file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or os.sep in str(name_or_path):
        if not p.is_file():
            raise DeviceError(f"device descriptor not found: {p}")
        return load_descriptor_file(p)
    for d in devices_dirs():
        f = d / f"{name_or_path}.toml"
        if f.is_file():
            return load_descriptor_file(f)
    names = [dev.name for dev in list_devices()]
    raise DeviceError(f"unknown device '{name_or_path}'; known: {', '.join(names) or 'none'} (or pass a path to a .toml descriptor)")


def load_descriptor_file(path: Path) -> DeviceDescriptor:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise DeviceError(f"{path}: invalid TOML ({e}); fix the syntax") from None
    return parse_descriptor(data, str(path))


def _check(section: str, data: dict, spec: dict, where: str) -> dict:
    unknown = set(data) - set(spec)
    if unknown:
        raise DeviceError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} in [{section}]; allowed: {', '.join(sorted(spec))}")
    out = {}
    for key, (typ, required, default) in spec.items():
        if key not in data:
            if required:
                raise DeviceError(f"{where}: [{section}] needs '{key}'")
            out[key] = default
            continue
        val = data[key]
        if typ is int and isinstance(val, bool) or not isinstance(val, typ):
            tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            raise DeviceError(f"{where}: [{section}] '{key}' must be a {tname}, got {val!r}")
        out[key] = val
    return out


def parse_descriptor(data: dict, where: str = "<descriptor>") -> DeviceDescriptor:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise DeviceError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise DeviceError(f"{where}: schema_version {version} is not supported (this edgeprune reads {SCHEMA_VERSION})")
    name = data.get("name")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise DeviceError(f"{where}: 'name' must be a non-empty string of letters, digits, '-', '_' or '.'")
    conn = data.get("connection", {"transport": "local"})
    if not isinstance(conn, dict):
        raise DeviceError(f"{where}: [connection] must be a table")
    transport = conn.get("transport", "local")
    if transport not in TRANSPORTS:
        raise DeviceError(f"{where}: unknown transport '{transport}'; use one of {', '.join(TRANSPORTS)}")
    conn = _check("connection", {"transport": transport, **conn}, _CONNECTION_KEYS[transport], where)
    if transport == "ssh" and conn["port"] not in range(1, 65536):
        raise DeviceError(f"{where}: [connection] port {conn['port']} is out of range")
    sections = {}
    for sec, spec in _SECTION_KEYS.items():
        raw = data.get(sec, {})
        if not isinstance(raw, dict):
            raise DeviceError(f"{where}: [{sec}] must be a table")
        if sec == "runtimes" and not raw:
            raise DeviceError(f"{where}: [runtimes] needs 'available', e.g. available = [\"onnxruntime\"]")
        sections[sec] = _check(sec, raw, spec, where)
    runtimes = tuple(sections["runtimes"]["available"])
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad or not runtimes:
        raise DeviceError(f"{where}: unknown runtime(s) {', '.join(map(str, bad)) or '(none given)'}; known: {', '.join(RUNTIMES)}")
    default = sections["runtimes"]["default"]
    if default is not None and default not in runtimes:
        raise DeviceError(f"{where}: default runtime '{default}' is not in available {list(runtimes)}")
    threads = sections["compute"]["threads"]
    if threads is not None and threads < 1:
        raise DeviceError(f"{where}: [compute] threads must be >= 1")
    return DeviceDescriptor(
        name=name, transport=transport, connection=conn, runtimes=runtimes, default_runtime=default,
        threads=threads, description=str(data.get("description", "")),
        clocks_pinned=sections["clocks"]["pinned"], clock_notes=sections["clocks"]["notes"],
        compute={k: v for k, v in sections["compute"].items() if v is not None}, source=where,
    )
