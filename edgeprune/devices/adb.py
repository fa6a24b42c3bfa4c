"""The adb transport: Android phones, timed with the native binaries pushed to the phone.

LiteRT (.tflite) runs under LiteRT's `benchmark_model` (op profiling for per-layer times, peak
memory from its periodic monitor); ExecuTorch (.pte) under `executor_runner`, which only reports
the total time of N executions, so the runner times several batches and reports statistics over
the batch means. Artifacts are pushed once per content hash under [connection].workdir; every
`adb shell` command line is built from shlex-quoted arguments.

    >>> AdbRunner(load_device("android-phone")).bench("m.tflite", "litert")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from edgeprune.devices import tools
from edgeprune.devices.descriptor import DeviceDescriptor
from edgeprune.devices.remote import noise_warning
from edgeprune.devices.runner import BenchResult, BenchSettings
from edgeprune.errors import DeviceError
from edgeprune.files import sha256_path
from edgeprune.runtimes.timing import summarize

log = logging.getLogger(__name__)
_TRANSIENT = ("device offline", "no devices/emulators found", "device not found", "closed", "protocol fault",
              "connection reset", "device still authorizing")
ET_BATCHES = 7  # executor_runner invocations per bench: the spread across them is the reported spread


class AdbRunner:
    retries = 3
    backoff_s = 1.0

    def __init__(self, device: DeviceDescriptor):
        self.device = device
        c = device.connection
        self.adb = c["adb"]
        self.serial = c["serial"]
        self.workdir = c["workdir"]
        self.benchmark_model = c["benchmark_model"]
        self.executor_runner = c["executor_runner"]
        self.command_timeout = int(c["command_timeout_s"])
        self._info: dict | None = None
        self._pushed: dict[str, str] = {}
        self.events: list[dict] = []

    # --- command lines (pure: tested without a phone) ---------------------------------------

    def adb_argv(self, *args: str) -> list[str]:
        return [self.adb] + (["-s", self.serial] if self.serial else []) + list(args)

    def shell_argv(self, argv: list[str]) -> list[str]:
        """adb shell joins its arguments into one string for the phone's sh: pass one quoted line."""
        return self.adb_argv("shell", tools.shell_join(argv))

    def remote_artifact(self, local: Path, sha: str) -> str:
        suffix = "".join(c for c in local.suffix if c.isalnum() or c == ".")
        return f"{self.workdir}/artifacts/{sha[:32]}/model{suffix}"

    # --- running ------------------------------------------------------------------------------

    def _run(self, argv: list[str], timeout: float | None = None, check: bool = True) -> subprocess.CompletedProcess:
        if shutil.which(self.adb) is None and not Path(self.adb).is_file():
            raise DeviceError(f"adb not found ('{self.adb}'); install Android platform-tools or set [connection].adb "
                              f"in {self.device.source}")
        for attempt in range(self.retries + 1):
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout or self.command_timeout)
            except subprocess.TimeoutExpired:
                raise DeviceError(f"adb command on '{self.device.name}' did not finish within "
                                  f"{timeout or self.command_timeout}s; raise [connection].command_timeout_s") from None
            err = (proc.stderr or "").lower()
            if proc.returncode != 0 and any(t in err for t in _TRANSIENT):
                if attempt == self.retries:
                    hint = f"-s {self.serial} " if self.serial else ""
                    raise DeviceError(f"phone '{self.device.name}' is not reachable over adb ({proc.stderr.strip()[-200:]}); "
                                      f"check the cable, USB debugging and 'adb {hint}devices -l'")
                self.events.append({"event": "retry", "attempt": attempt + 1})
                time.sleep(self.backoff_s * 2 ** attempt)
                continue
            if check and proc.returncode != 0:
                raise DeviceError(f"adb on '{self.device.name}' failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
            return proc
        raise AssertionError("unreachable")

    def shell(self, argv: list[str], timeout: float | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self._run(self.shell_argv(argv), timeout, check)

    def info(self) -> dict:
        if self._info is None:
            props = {}
            for key in ("ro.product.model", "ro.board.platform", "ro.build.version.release", "ro.product.cpu.abi"):
                props[key] = self.shell(["getprop", key], timeout=30).stdout.strip()
            gov = self.shell(["sh", "-c", "cat /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"], check=False).stdout
            temps = self.shell(["sh", "-c", "for z in /sys/class/thermal/thermal_zone*; do echo \"$(cat $z/type) $(cat $z/temp)\"; done"],
                               check=False).stdout
            tools_present = {}
            for name, path in (("benchmark_model", self.benchmark_model), ("executor_runner", self.executor_runner)):
                tools_present[name] = self.shell(["test", "-x", path], check=False).returncode == 0
            self._info = parse_android_info(props, gov, temps, tools_present)
        return self._info

    def fingerprint(self, runtime: str, threads: int | None = None) -> dict:
        i = self.info()
        return {"cpu": i["soc"], "cores": len(i["clocks"]["governors"]) or None, "machine": i["abi"], "system": "Android",
                "runtime": runtime, "runtime_version": "native binary" if i["tools"].get(_TOOL.get(runtime, "")) else "not installed",
                "threads": threads or self.device.threads, "model": i["model"], "android": i["android"]}

    def push(self, local: Path) -> str:
        sha = sha256_path(local)
        if sha in self._pushed:
            return self._pushed[sha]
        dst = self.remote_artifact(local, sha)
        if self.shell(["test", "-e", dst], check=False).returncode != 0:
            self.shell(["mkdir", "-p", str(Path(dst).parent)])
            self._run(self.adb_argv("push", str(local), dst + ".incoming"))
            self.shell(["mv", "-f", dst + ".incoming", dst])
        self._pushed[sha] = dst
        return dst

    def bench(self, artifact, runtime: str, settings: BenchSettings = BenchSettings()) -> BenchResult:
        self.device.require_runtime(runtime)
        if runtime not in _TOOL:
            raise DeviceError(f"the adb transport runs litert and executorch, not {runtime}; use an ssh device for it")
        path = Path(artifact)
        if not path.is_file():
            raise DeviceError(f"artifact not found: {path}")
        info = self.info()
        binary = self.benchmark_model if runtime == "litert" else self.executor_runner
        if not info["tools"].get(_TOOL[runtime]):
            raise DeviceError(f"{_TOOL[runtime]} is not on '{self.device.name}' at {binary}; push an arm64 build there "
                              f"(adb push {_TOOL[runtime]} {binary}) or fix [connection].{_TOOL[runtime]}")
        remote = self.push(path)
        threads = settings.threads or self.device.threads
        if runtime == "litert":
            argv = tools.benchmark_model_argv(binary, remote, threads=threads, warmup=settings.warmup,
                                              runs=settings.max_runs, op_profiling=settings.per_layer)
            proc = self.shell(argv, check=False)
            parsed = tools.parse_benchmark_model(proc.stdout + proc.stderr)
            timing, per_layer, peak = parsed.timing, parsed.per_layer, parsed.peak_memory_mb
        else:
            timing, per_layer, peak = self._bench_executorch(binary, remote, threads, settings)
        warnings = noise_warning(timing)
        if not info["clocks"]["pinned"] and not self.device.clocks_pinned:
            warnings.append(f"clocks are not pinned on {self.device.name}"
                            + (f" ({self.device.clock_notes})" if self.device.clock_notes else ""))
        hot = [z for z in info["thermal"] if z["celsius"] is not None and z["celsius"] >= 80]
        if hot:
            warnings.append(f"thermal zone {hot[0]['zone']} is at {hot[0]['celsius']:.0f} C: the phone may be throttling")
        return BenchResult(str(path), runtime, self.device.name, timing, self.fingerprint(runtime, threads),
                           peak_memory_mb=peak, per_layer=per_layer, warnings=warnings)

    def _bench_executorch(self, binary: str, remote: str, threads, settings: BenchSettings):
        per_batch = max(settings.min_runs, 1)
        self.shell(executor_runner_warmup(binary, remote, settings.warmup, threads), check=False)
        means = []
        for _ in range(ET_BATCHES):
            proc = self.shell(tools.executor_runner_argv(binary, remote, executions=per_batch, threads=threads), check=False)
            n, total = tools.parse_executor_runner(proc.stdout + proc.stderr)
            if total is None:
                raise DeviceError("this executor_runner does not print its run time; rebuild it from ExecuTorch >= 0.4")
            means.append(total / n)
        per_layer: list[dict] = []
        if settings.per_layer:
            per_layer = self._executorch_layers(binary, remote, threads)
        return summarize(means, reject_outliers=False), per_layer, None

    def _executorch_layers(self, binary: str, remote: str, threads) -> list[dict]:
        """Run once with --etdump_path, pull the ETDump, read it with the ExecuTorch Inspector on this host."""
        dump = f"{self.workdir}/run.etdp"
        self.shell(tools.executor_runner_argv(binary, remote, executions=10, threads=threads, etdump=dump), check=False)
        with tempfile.TemporaryDirectory(prefix="ep-etdump-") as d:
            local = Path(d) / "run.etdp"
            self._run(self.adb_argv("pull", dump, str(local)))
            self.shell(["rm", "-f", dump], check=False)
            return etdump_layers(local)

    def close(self) -> None:
        """Artifacts stay cached on the phone (by content hash); nothing else is left there."""


_TOOL = {"litert": "benchmark_model", "executorch": "executor_runner"}


def executor_runner_warmup(binary: str, remote: str, warmup: int, threads) -> list[str]:
    return tools.executor_runner_argv(binary, remote, executions=max(warmup, 1), threads=threads)


def parse_android_info(props: dict, governors: str, temps: str, tools_present: dict) -> dict:
    govs = [g.strip() for g in governors.split() if g.strip()]
    thermal = []
    for line in temps.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            v = int(parts[1])
            thermal.append({"zone": parts[0], "celsius": v / 1000.0 if abs(v) > 200 else float(v)})
    return {
        "model": props.get("ro.product.model") or "unknown", "soc": props.get("ro.board.platform") or "unknown",
        "android": props.get("ro.build.version.release") or "unknown", "abi": props.get("ro.product.cpu.abi") or "unknown",
        "clocks": {"governors": govs, "pinned": bool(govs) and all(g == "performance" for g in govs)},
        "thermal": thermal, "tools": tools_present,
    }


def etdump_layers(path: Path) -> list[dict]:
    """Per-operator/delegate p50 times from an ETDump file (needs executorch's devtools on this host)."""
    try:
        from executorch.devtools import Inspector
    except ImportError:
        log.warning("executorch devtools are not installed here: no per-layer times from the ETDump")
        return []
    rows = []
    for block in Inspector(etdump_path=str(path)).event_blocks:
        if block.name != "Execute":
            continue
        events = [ev for ev in block.events if ev.perf_data]
        nested = any(getattr(ev, "is_delegated_op", False) for ev in events)  # DELEGATE_CALL wraps these
        for ev in events:
            if ev.name not in ("Method::execute", "Program::load_method", "Method::init") and \
                    not (nested and ev.name == "DELEGATE_CALL"):
                rows.append({"name": ev.name, "op": getattr(ev, "delegate_backend_name", None) or "",
                             "ms": float(ev.perf_data.p50)})
    total = sum(r["ms"] for r in rows) or 1.0
    for r in rows:
        r["percent"] = 100.0 * r["ms"] / total
    return rows
