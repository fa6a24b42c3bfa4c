"""`devices check`: is the device reachable, which runtimes (and versions) does it have, are clocks pinned?"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from edgeprune.devices.descriptor import DeviceDescriptor
from edgeprune.errors import DeviceError


@dataclass
class CheckReport:
    device: str
    transport: str
    reachable: bool
    seconds: float
    system: str = ""
    runtimes: list[dict] = field(default_factory=list)   # {runtime, declared, available, version}
    clocks_pinned: bool | None = None
    thermal: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)    # things that stop a bench
    warnings: list[str] = field(default_factory=list)    # things that make numbers less trustworthy

    @property
    def ok(self) -> bool:
        return self.reachable and not self.problems

    def to_json(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


def check_device(device: DeviceDescriptor) -> CheckReport:
    t0 = time.monotonic()
    try:
        info = _device_info(device)
    except DeviceError as e:
        return CheckReport(device.name, device.transport, False, time.monotonic() - t0, problems=[str(e)])
    report = CheckReport(device.name, device.transport, True, time.monotonic() - t0)
    if device.transport == "adb":
        report.system = f"Android {info['android']} on {info['model']} ({info['soc']}, {info['abi']})"
        avail = {"litert": info["tools"].get("benchmark_model", False), "executorch": info["tools"].get("executor_runner", False)}
        versions = {k: "native binary" if v else None for k, v in avail.items()}
    else:
        report.system = f"{info.get('system')} {info.get('machine')} {info.get('cpu')}, {info.get('cores')} cores, " \
                        f"python {info.get('python')}" + (f", {info['jetson'].splitlines()[0]}" if info.get("jetson") else "")
        rts = info.get("runtimes", {})
        avail = {k: bool(v.get("available")) for k, v in rts.items()}
        versions = {k: v.get("version") for k, v in rts.items()}
    for rt in sorted(set(device.runtimes) | {k for k, v in avail.items() if v}):
        declared = rt in device.runtimes
        report.runtimes.append({"runtime": rt, "declared": declared, "available": avail.get(rt, False),
                                "version": versions.get(rt)})
        if declared and not avail.get(rt, False):
            report.problems.append(f"runtime '{rt}' is declared in {device.source} but missing on the device")
    clocks = info.get("clocks") or {}
    report.clocks_pinned = clocks.get("pinned")
    report.thermal = info.get("thermal", [])
    if report.clocks_pinned is False or (report.clocks_pinned is None and not device.clocks_pinned):
        report.warnings.append("clocks are not pinned" + (f": {device.clock_notes}" if device.clock_notes else ""))
    if report.clocks_pinned is None and device.clocks_pinned:
        report.warnings.append("the device does not expose CPU frequency controls; the descriptor says clocks are pinned")
    hot = [z for z in report.thermal if (z.get("celsius") or 0) >= 80]
    if hot:
        report.warnings.append(f"thermal zone {hot[0]['zone']} is at {hot[0]['celsius']:.0f} C")
    return report


def _device_info(device: DeviceDescriptor) -> dict:
    if device.transport == "local":
        from edgeprune.devices import agent

        return agent.device_info()
    from edgeprune.devices.runner import get_runner

    runner = get_runner(device)
    try:
        return runner.info()
    finally:
        runner.close()
