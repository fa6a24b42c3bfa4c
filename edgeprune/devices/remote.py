"""Turning what a device reported (agent JSON, native tool output) into BenchResults and fingerprints.

Shared by the remote transports so the ssh and adb runners report the same fields and warnings.
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.devices.descriptor import DeviceDescriptor
from edgeprune.devices.runner import BenchResult, BenchSettings
from edgeprune.errors import DeviceError
from edgeprune.runtimes.timing import Timing, summarize

NOISY_REL_STD = 0.15   # std above 15% of the median: the run was disturbed
HOT_CELSIUS = 80.0     # a zone this hot is likely throttling
WARMING_CELSIUS = 10.0  # a zone that heated this much during the run may have throttled part-way


def agent_source() -> bytes:
    """The bench agent file, as pushed to devices."""
    return (Path(__file__).with_name("agent.py")).read_bytes()


def fingerprint_from_info(info: dict, runtime: str, threads: int | None) -> dict:
    """Same keys as devices.fingerprint.host_fingerprint, plus what identifies a board."""
    rt = info.get("runtimes", {}).get(runtime, {})
    fp = {
        "cpu": info.get("cpu"), "cpu_id": info.get("cpu_id"), "cores": info.get("cores"), "machine": info.get("machine"),
        "system": info.get("system"), "runtime": runtime,
        "runtime_version": rt.get("version") or "not installed", "threads": threads,
        "hostname": info.get("hostname"),
    }
    if info.get("jetson"):
        fp["jetson"] = info["jetson"].splitlines()[0]
    nvp = (info.get("clocks") or {}).get("nvpmodel")
    if nvp:
        fp["nvpmodel"] = nvp
    for key in ("model", "soc", "android"):
        if info.get(key):
            fp[key] = info[key]
    return fp


def state_warnings(device: DeviceDescriptor, before: dict | None, after: dict | None) -> list[str]:
    """Clock and thermal warnings from the agent's before/after snapshots."""
    warnings = []
    pinned = ((after or before or {}).get("clocks") or {}).get("pinned")
    if pinned is False or (pinned is None and not device.clocks_pinned):
        hint = f" ({device.clock_notes})" if device.clock_notes else ""
        warnings.append(f"clocks are not pinned on {device.name}{hint}")
    temps_before = {z["zone"]: z["celsius"] for z in (before or {}).get("thermal", []) if z.get("celsius") is not None}
    for z in (after or {}).get("thermal", []):
        c = z.get("celsius")
        if c is None:
            continue
        if c >= HOT_CELSIUS:
            warnings.append(f"thermal zone {z['zone']} is at {c:.0f} C: the device may be throttling")
        elif z["zone"] in temps_before and c - temps_before[z["zone"]] >= WARMING_CELSIUS:
            warnings.append(f"thermal zone {z['zone']} rose {c - temps_before[z['zone']]:.0f} C during the run")
    return warnings


def noise_warning(timing: Timing) -> list[str]:
    if timing.p50_ms > 0 and timing.std_ms / timing.p50_ms > NOISY_REL_STD:
        return [f"noisy run: std is {100 * timing.std_ms / timing.p50_ms:.0f}% of the median; close other work on "
                "the device or pin its clocks and measure again"]
    return []


def agent_result_to_bench(raw: dict, device: DeviceDescriptor, artifact: str, runtime: str, settings: BenchSettings,
                          fingerprint: dict) -> BenchResult:
    """An agent's JSON result -> BenchResult (errors -> one-line DeviceError naming the fix)."""
    if not raw.get("ok"):
        kind, msg = raw.get("error"), raw.get("message", "unknown error")
        if kind == "runtime_missing":
            raise DeviceError(f"device '{device.name}' cannot run {runtime}: {msg}; install it there or remove "
                              f"'{runtime}' from [runtimes].available in {device.source}")
        raise DeviceError(f"bench of {Path(artifact).name} on '{device.name}' failed: {msg}")
    per_layer: list[dict] = []
    notes = list(raw.get("notes", []))
    peak = None
    if raw.get("process_peak_mb") is not None:
        # growth over the RSS with the runtime already imported: what loading + running the model cost
        peak = max(raw["process_peak_mb"] - (raw.get("baseline_mb") or 0.0), 0.0)
    if runtime == "tensorrt":
        from edgeprune.devices.tools import parse_trtexec_output, parse_trtexec_profile, parse_trtexec_times

        samples = parse_trtexec_times(raw["times"]) if raw.get("times") else []
        timing = summarize(samples) if samples else parse_trtexec_output(raw.get("stdout", "")).timing
        if settings.per_layer and raw.get("profile"):
            per_layer = parse_trtexec_profile(raw["profile"])
        peak = None  # the agent only waited for trtexec: its own RSS says nothing about the engine
    else:
        samples = raw.get("samples_ms") or []
        if not samples:
            raise DeviceError(f"the agent on '{device.name}' returned no timings for {Path(artifact).name}; re-run the bench")
        timing = summarize(samples)
        per_layer = raw.get("per_layer", []) if settings.per_layer else []
    warnings = noise_warning(timing) + state_warnings(device, raw.get("state_before"), raw.get("state_after"))
    warnings += notes
    fp = dict(fingerprint)
    if raw.get("runtime_version"):
        fp["runtime_version"] = raw["runtime_version"]
    return BenchResult(artifact, runtime, device.name, timing, fp, peak_memory_mb=peak,
                       per_layer=per_layer, warnings=warnings)
