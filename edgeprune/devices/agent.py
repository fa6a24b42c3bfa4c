#!/usr/bin/env python3
"""On-device bench agent: one file, standard library plus the runtime being timed.

edgeprune copies this file to the device and runs it under the descriptor's python. It never
imports edgeprune, so a board only needs python3 and the runtime (onnxruntime, executorch,
ai-edge-litert / tflite-runtime, coremltools, or TensorRT's trtexec).

    python3 agent.py info [--trtexec PATH]
    python3 agent.py bench --artifact PATH --runtime NAME --out RESULT.json [--threads N] ...
    python3 agent.py status --out RESULT.json

`bench` writes RESULT.json atomically before printing it, and records its pid in RESULT.json.pid
while it runs, so a host whose connection dropped can reconnect and fetch the result (or wait
for the run still in progress) instead of measuring again. Raw samples are returned; the host
computes the statistics with the same rules it uses locally.

Exit codes: 0 ok, 2 bad arguments, 3 runtime missing on the device, 4 artifact failed to load/run.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

AGENT_VERSION = 1
RUNTIME_MODULES = {
    "onnxruntime": ("onnxruntime", "onnxruntime"),
    "executorch": ("executorch", "executorch"),
    "litert": ("ai_edge_litert", "ai-edge-litert"),
    "coreml": ("coremltools", "coremltools"),
    "tensorrt": ("tensorrt", "tensorrt"),
}


class AgentError(Exception):
    def __init__(self, kind: str, message: str, code: int):
        super().__init__(message)
        self.kind, self.code = kind, code


# --- device state -------------------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def _cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model"):
        for line in text.splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


# x86 SIMD tiers, widest first, and extensions that change which kernels a runtime picks (int8 dot products,
# bf16, matrix units); ARM features of the same kind
_X86_TIERS = ("avx512f", "avx2", "avx", "sse4_2")
_X86_EXTRAS = ("avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")
_ARM_EXTRAS = ("asimddp", "i8mm", "bf16", "sve", "sve2", "sme")


def cpu_identity(cpuinfo: str | None = None) -> str | None:
    """Microarchitecture and SIMD features, from /proc/cpuinfo.

    A cloud VM often names every CPU generation alike ("AMD EPYC"); the family/model numbers and the
    vector extensions tell them apart, and kernels of one run 2-3x faster than of the other (a
    latency table measured on one is wrong on the other). None where /proc/cpuinfo says nothing."""
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    if not text:
        return None
    first: dict[str, str] = {}
    parts = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        first.setdefault(key, value)
        if key == "CPU part":
            parts.add(value)  # big.LITTLE: one per core type
    flags = set((first.get("flags") or first.get("Features") or "").split())
    if "vendor_id" in first:
        tier = next((t for t in _X86_TIERS if t in flags), "base")
        extras = [e for e in _X86_EXTRAS if e in flags]
        return " ".join([first["vendor_id"], f"family {first.get('cpu family', '?')} model {first.get('model', '?')}",
                         tier] + extras)
    if "CPU implementer" in first:
        extras = [e for e in _ARM_EXTRAS if e in flags]
        return " ".join([f"arm {first['CPU implementer']} part {'/'.join(sorted(parts))}"] + extras)
    return None


def clock_state() -> dict:
    """CPU governors and frequencies; 'pinned' when every core runs 'performance' or min == max."""
    cpus = []
    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq")):
        cpus.append({
            "cpu": d.split("/")[-2],
            "governor": _read(f"{d}/scaling_governor"),
            "cur_khz": _int(_read(f"{d}/scaling_cur_freq")),
            "min_khz": _int(_read(f"{d}/scaling_min_freq")),
            "max_khz": _int(_read(f"{d}/scaling_max_freq")),
        })
    gpu = None
    # Jetson GPUs appear under devfreq by SoC block name (ga10b on Orin, gv11b on Xavier); Mali on phones/boards
    gpu_names = ("gpu", "ga10b", "gv11b", "gp10b", "mali")
    for d in sorted(p for p in glob.glob("/sys/class/devfreq/*") if any(n in os.path.basename(p).lower() for n in gpu_names)):
        gpu = {"path": d, "governor": _read(f"{d}/governor"), "cur_hz": _int(_read(f"{d}/cur_freq")),
               "min_hz": _int(_read(f"{d}/min_freq")), "max_hz": _int(_read(f"{d}/max_freq"))}
        break
    if not cpus:
        pinned = None  # the platform does not expose cpufreq (containers, macOS): unknown
    else:
        pinned = all(c["governor"] == "performance" or (c["min_khz"] is not None and c["min_khz"] == c["max_khz"])
                     for c in cpus)
        if gpu is not None and gpu["min_hz"] is not None and gpu["min_hz"] != gpu["max_hz"] \
                and gpu["governor"] != "performance":
            pinned = False
    return {"pinned": pinned, "cpus": cpus, "gpu": gpu, "nvpmodel": _nvpmodel()}


def _nvpmodel() -> str | None:
    """Jetson power mode, when the board reports one."""
    status = _read("/var/lib/nvpmodel/status")
    return status.splitlines()[0] if status else None


def thermal_state() -> list[dict]:
    zones = []
    for d in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        temp = _int(_read(f"{d}/temp"))
        zones.append({"zone": _read(f"{d}/type") or os.path.basename(d),
                      "celsius": None if temp is None else temp / 1000.0})
    return zones


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def runtime_info(trtexec: str | None = None) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name, (module, dist) in RUNTIME_MODULES.items():
        present = importlib.util.find_spec(module) is not None
        if name == "coreml" and sys.platform != "darwin":
            present = False  # coremltools installs on Linux but predicts only on macOS
        if not present and name == "litert" and importlib.util.find_spec("tflite_runtime") is not None:
            module, dist, present = "tflite_runtime", "tflite-runtime", True
        ver = None
        if present:
            try:
                ver = version(dist)
            except PackageNotFoundError:
                ver = "unknown"
        out[name] = {"available": present, "version": ver, "module": module}
    if trtexec:
        ok = os.path.isfile(trtexec) and os.access(trtexec, os.X_OK)
        out["trtexec"] = {"available": ok, "path": trtexec, "version": _trtexec_version(trtexec) if ok else None}
        if ok and not out["tensorrt"]["available"]:
            out["tensorrt"] = {"available": True, "version": out["trtexec"]["version"], "module": "trtexec"}
    return out


def _trtexec_version(path: str) -> str | None:
    try:
        text = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return trtexec_banner_version(text)


def trtexec_banner_version(text: str) -> str | None:
    """'[TensorRT v100300]' -> '10.3.0' (10.x: major*10000 + minor*100 + patch); '[TensorRT v8601]' -> '8.6.1' (8.x)."""
    m = re.search(r"\[TensorRT v(\d+)\]", text)
    if not m:
        return None
    n = int(m.group(1))
    if n >= 100000:
        return f"{n // 10000}.{n // 100 % 100}.{n % 100}"
    return f"{n // 1000}.{n // 100 % 10}.{n % 100}"


def device_info(trtexec: str | None = None) -> dict:
    mem_kb = None
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = _int(line.split()[1])
    return {
        "agent_version": AGENT_VERSION,
        "hostname": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_id": cpu_identity(),
        "cores": os.cpu_count(),
        "memory_mb": None if mem_kb is None else round(mem_kb / 1024),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "jetson": _read("/etc/nv_tegra_release"),
        "clocks": clock_state(),
        "thermal": thermal_state(),
        "runtimes": runtime_info(trtexec),
    }


# --- timing -------------------------------------------------------------------------------

def time_loop(fn, warmup: int, min_runs: int, max_runs: int, max_seconds: float, rel_tol: float) -> list[float]:
    """Same stopping rule as edgeprune.runtimes.timing.measure: stop once the running median settles."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    last = None
    while True:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
        n = len(samples)
        elapsed = time.perf_counter() - start
        if n >= max_runs or (elapsed > max_seconds and n >= 3):
            return samples
        if n >= min_runs and n % max(min_runs // 2, 1) == 0:
            med = statistics.median(samples)
            if last is not None and abs(med - last) <= rel_tol * last:
                return samples
            last = med


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def _current_rss_mb() -> float | None:
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return _peak_rss_mb()  # no /proc (macOS): the peak so far is the best baseline available


_PREIMPORT = {"onnxruntime": ("numpy", "onnxruntime"), "executorch": ("numpy", "torch", "executorch.extension.pybindings.portable_lib"),
              "litert": ("numpy",), "coreml": ("numpy", "coremltools")}


def _baseline_mb(runtime: str) -> float | None:
    """RSS once the runtime's libraries are imported: peak minus this is what the model itself cost."""
    for mod in _PREIMPORT.get(runtime, ()):
        try:
            __import__(mod)
        except Exception:
            break  # the bench reports the missing runtime properly
    return _current_rss_mb()


def _random_array(np, shape, dtype):
    rng = np.random.default_rng(0)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return np.zeros(shape, dtype)
    return rng.integers(0, 8, size=shape).astype(dtype)


def _require(runtime: str):
    module = RUNTIME_MODULES[runtime][0]
    if runtime == "litert" and importlib.util.find_spec("ai_edge_litert") is None \
            and importlib.util.find_spec("tflite_runtime") is not None:
        return
    if importlib.util.find_spec(module) is None:
        raise AgentError("runtime_missing", f"python module '{module}' is not installed for {sys.executable}", 3)


# --- runtimes -----------------------------------------------------------------------------

def bench_onnxruntime(path: str, args) -> dict:
    _require("onnxruntime")
    import numpy as np
    import onnxruntime as ort

    types = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
             "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(bool)": "bool"}

    def session(profile_dir: str | None):
        so = ort.SessionOptions()
        if args.threads:
            so.intra_op_num_threads = args.threads
            so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if profile_dir:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(profile_dir, "ort")
        try:
            return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise AgentError("load_failed", f"ONNX Runtime cannot load the model ({type(e).__name__}: {e})", 4)

    sess = session(None)
    feeds = {i.name: _random_array(np, tuple(d if isinstance(d, int) else 1 for d in i.shape), types.get(i.type, "float32"))
             for i in sess.get_inputs()}
    samples = time_loop(lambda: sess.run(None, feeds), args.warmup, args.min_runs, args.max_runs, args.max_seconds,
                        args.rel_tol)
    result = {"samples_ms": samples, "runtime_version": ort.__version__}
    if args.per_layer:
        # a separate profiled session: profiling overhead must not leak into the timed samples
        with tempfile.TemporaryDirectory(prefix="ep-ort-prof-") as d:
            prof = session(d)
            flush = _cache_flusher(np) if getattr(args, "cold_cache", False) else (lambda: None)
            for _ in range(2):
                prof.run(None, feeds)
            runs = max(5, min(50, len(samples)))
            for _ in range(runs):
                flush()
                prof.run(None, feeds)
            trace = prof.end_profiling()
            result["per_layer"] = ort_layers(trace, skip=2)
    return result


def _cache_flusher(np, mb: int = 64):
    """A call that writes `mb` MB, evicting the last-level cache (twice the largest seen here, 32 MB)."""
    buf = np.zeros(mb * 2**20 // 8)

    def flush():
        np.add(buf, 1.0, out=buf)
    return flush


def ort_layers(trace_path: str, skip: int = 0) -> list[dict]:
    """Per-node kernel time from ORT's chrome-trace profile (median over the profiled runs after `skip`)."""
    with open(trace_path, encoding="utf-8") as f:
        events = json.load(f)
    per_node: dict[str, dict] = {}
    order: list[str] = []
    run_index = -1
    for ev in events:
        if ev.get("cat") == "Session" and ev.get("name") == "model_run":
            run_index += 1
            continue
        if ev.get("cat") != "Node" or not str(ev.get("name", "")).endswith("_kernel_time"):
            continue
        if run_index >= 0 and run_index < skip:
            continue
        name = ev["name"][: -len("_kernel_time")]
        if name not in per_node:
            per_node[name] = {"name": name, "op": ev.get("args", {}).get("op_name", ""), "us": []}
            order.append(name)
        per_node[name]["us"].append(float(ev.get("dur", 0)))
    # the median run of each node: one preempted run on a shared core would otherwise move a mean by
    # more than a small kernel costs
    rows = [{"name": n, "op": per_node[n]["op"], "ms": statistics.median(per_node[n]["us"]) / 1000.0,
             "runs": len(per_node[n]["us"])} for n in order]
    total = sum(r["ms"] for r in rows) or 1.0
    for r in rows:
        r["percent"] = 100.0 * r["ms"] / total
    return rows


def bench_executorch(path: str, args) -> dict:
    _require("executorch")
    import numpy as np
    import torch
    from executorch.extension.pybindings import portable_lib as et

    if args.threads:
        try:
            et._unsafe_reset_threadpool(int(args.threads))
        except Exception:
            pass
    etdump_wanted = bool(args.per_layer)
    try:
        module = et._load_for_executorch(path, enable_etdump=etdump_wanted, debug_buffer_size=0) if etdump_wanted \
            else et._load_for_executorch(path)
    except TypeError:
        module, etdump_wanted = et._load_for_executorch(path), False
    except Exception as e:
        raise AgentError("load_failed", f"ExecuTorch cannot load the program ({type(e).__name__}: {e})", 4)
    dtypes = {6: "float32", 5: "float16", 4: "int64", 3: "int32", 1: "int8", 0: "uint8", 11: "bool"}
    meta = module.method_meta("forward")
    inputs = []
    for i in range(meta.num_inputs()):
        t = meta.input_tensor_meta(i)
        inputs.append(torch.from_numpy(_random_array(np, tuple(t.sizes()), dtypes.get(int(t.dtype()), "float32"))))
    inputs = tuple(inputs)
    samples = time_loop(lambda: module.forward(inputs), args.warmup, args.min_runs, args.max_runs, args.max_seconds,
                        args.rel_tol)
    from importlib.metadata import version

    result = {"samples_ms": samples, "runtime_version": version("executorch")}
    if etdump_wanted:
        cold = 0
        if getattr(args, "cold_cache", False):
            # extra runs after the timed ones, each after a cache flush; the profile reads only those
            flush, cold = _cache_flusher(np), 15
            for _ in range(cold):
                flush()
                module.forward(inputs)
        result["per_layer"], note = _etdump_layers(module, last=cold)
        if note:
            result["notes"] = [note]
    return result


def _etdump_layers(module, last: int = 0) -> tuple[list[dict], str | None]:
    """Operator/delegate times from an ETDump via the ExecuTorch Inspector, when the devtools are installed
    (median over every run, or over the `last` runs only)."""
    with tempfile.TemporaryDirectory(prefix="ep-etdump-") as d:
        etdump = os.path.join(d, "run.etdp")
        try:
            module.write_etdump_result_to_file(etdump)
            import warnings

            from executorch.devtools import Inspector

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # no debug buffer: tensor data is not wanted here
                inspector = Inspector(etdump_path=etdump)
        except Exception as e:
            return [], f"ETDump per-layer times unavailable ({type(e).__name__}: {e})"
        rows = []
        for block in inspector.event_blocks:
            if block.name != "Execute":
                continue
            events = [ev for ev in block.events if ev.perf_data]
            # DELEGATE_CALL encloses the delegate's own per-op events: keep only the finer ones when present
            nested = any(getattr(ev, "is_delegated_op", False) for ev in events)
            for ev in events:
                if ev.name in ("Method::execute", "Program::load_method", "Method::init") or \
                        (nested and ev.name == "DELEGATE_CALL"):
                    continue
                raw = list(ev.perf_data.raw)[-last:] if last else list(ev.perf_data.raw)
                rows.append({"name": ev.name, "op": getattr(ev, "delegate_backend_name", None) or "",
                             "ms": float(statistics.median(raw)) if raw else float(ev.perf_data.p50)})
        total = sum(r["ms"] for r in rows) or 1.0
        for r in rows:
            r["percent"] = 100.0 * r["ms"] / total
        return rows, None


def bench_litert(path: str, args) -> dict:
    _require("litert")
    import numpy as np

    try:
        from ai_edge_litert.interpreter import Interpreter
        from importlib.metadata import version

        ver = version("ai-edge-litert")
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore
        from importlib.metadata import version

        ver = version("tflite-runtime")
    try:
        interp = Interpreter(model_path=path, num_threads=args.threads or None)
        interp.allocate_tensors()
    except Exception as e:
        raise AgentError("load_failed", f"LiteRT cannot load the model ({type(e).__name__}: {e})", 4)
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], _random_array(np, tuple(int(x) for x in d["shape"]), d["dtype"]))
    samples = time_loop(interp.invoke, args.warmup, args.min_runs, args.max_runs, args.max_seconds, args.rel_tol)
    out = {"samples_ms": samples, "runtime_version": ver}
    if args.per_layer:
        out["notes"] = ["LiteRT's Python interpreter exposes no op profiler; use benchmark_model --enable_op_profiling"]
    return out


def bench_coreml(path: str, args) -> dict:
    _require("coreml")
    if sys.platform != "darwin":
        raise AgentError("runtime_missing", "Core ML predictions need macOS; this device is " + sys.platform, 3)
    import coremltools as ct
    import numpy as np

    units = {"all": ct.ComputeUnit.ALL, "cpu": ct.ComputeUnit.CPU_ONLY, "cpu_gpu": ct.ComputeUnit.CPU_AND_GPU,
             "cpu_ne": ct.ComputeUnit.CPU_AND_NE}[args.compute_units]
    try:
        model = ct.models.MLModel(path, compute_units=units)
    except Exception as e:
        raise AgentError("load_failed", f"Core ML cannot load the package ({type(e).__name__}: {e})", 4)
    feeds = {}
    for i in model.get_spec().description.input:
        feeds[i.name] = _random_array(np, tuple(i.type.multiArrayType.shape), "float32")
    samples = time_loop(lambda: model.predict(feeds), args.warmup, args.min_runs, args.max_runs, args.max_seconds,
                        args.rel_tol)
    return {"samples_ms": samples, "runtime_version": ct.__version__, "compute_units": args.compute_units}


def bench_tensorrt(path: str, args) -> dict:
    """Build + time with trtexec; its raw outputs go back to the host, which parses them."""
    exe = args.trtexec
    if not exe or not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise AgentError("runtime_missing", f"trtexec not found at {exe}; install TensorRT (JetPack) or set "
                         "[connection].trtexec", 3)
    work = os.path.dirname(os.path.abspath(args.out))
    base = os.path.join(work, os.path.basename(args.out)[: -len(".json")])
    # engines are built once per artifact and precision, next to the artifact on the device, then reloaded
    engine = os.path.splitext(path)[0] + "." + args.precision + ".engine"
    cmd = trtexec_argv(exe, path, base, args, engine)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.tool_timeout)
    except subprocess.TimeoutExpired:
        raise AgentError("timeout", f"trtexec did not finish within {args.tool_timeout}s", 4)
    out = {"tool": "trtexec", "argv": cmd, "returncode": proc.returncode, "stdout": proc.stdout[-200000:],
           "stderr": proc.stderr[-20000:]}
    for key, suffix in (("times", ".times.json"), ("profile", ".profile.json")):
        try:
            with open(base + suffix, encoding="utf-8") as f:
                out[key] = json.load(f)
        except (OSError, ValueError):
            out[key] = None
    if proc.returncode != 0:
        raise AgentError("load_failed", "trtexec failed: " + (proc.stdout + proc.stderr).strip()[-400:], 4)
    return out


def trtexec_argv(exe: str, path: str, base: str, args, engine: str | None = None) -> list[str]:
    """Time an engine: the given one, the cached `engine` if it exists, else build it from the ONNX into `engine`."""
    if path.endswith((".engine", ".plan")):
        source = ["--loadEngine=" + path]
    elif engine and os.path.exists(engine):
        source = ["--loadEngine=" + engine]
    else:
        source = ["--onnx=" + path, "--saveEngine=" + (engine or base + ".engine")]
        if args.precision in ("fp16", "int8"):
            source.append("--" + args.precision)
    cmd = [exe] + source + [f"--warmUp={max(int(args.warmup), 0) * 100}", f"--iterations={args.max_runs}",
                            f"--duration={max(int(args.max_seconds), 1)}", "--exportTimes=" + base + ".times.json"]
    if args.per_layer:
        cmd += ["--dumpProfile", "--separateProfileRun", "--exportProfile=" + base + ".profile.json"]
    return cmd


BENCHES = {"onnxruntime": bench_onnxruntime, "executorch": bench_executorch, "litert": bench_litert,
           "coreml": bench_coreml, "tensorrt": bench_tensorrt}


# --- commands -----------------------------------------------------------------------------

def _write_json_atomic(path: str, obj: dict) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".result-", suffix=".tmp", dir=d)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _emit(obj: dict) -> None:
    try:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass  # the host went away; it reads the result file when it reconnects


def cmd_bench(args) -> int:
    # a dropped connection must not kill a run in progress: the host reconnects and collects it
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    pidfile = args.out + ".pid"
    with open(pidfile, "w", encoding="utf-8") as f:
        f.write(str(os.getpid()))
    state_before = {"clocks": clock_state(), "thermal": thermal_state()}
    baseline = _baseline_mb(args.runtime)
    t0 = time.time()
    try:
        if args.runtime not in BENCHES:
            raise AgentError("bad_arguments", f"unknown runtime {args.runtime}", 2)
        if not os.path.exists(args.artifact):
            raise AgentError("artifact_missing", f"artifact not found on the device: {args.artifact}", 4)
        body = BENCHES[args.runtime](args.artifact, args)
        result = {"ok": True, **body}
    except AgentError as e:
        result = {"ok": False, "error": e.kind, "message": str(e), "exit_code": e.code}
    result.update({"agent_version": AGENT_VERSION, "pid": os.getpid(), "runtime": args.runtime,
                   "threads": args.threads, "wall_s": round(time.time() - t0, 3), "process_peak_mb": _peak_rss_mb(),
                   "baseline_mb": baseline,
                   "state_before": state_before, "state_after": {"clocks": clock_state(), "thermal": thermal_state()}})
    _write_json_atomic(args.out, result)
    try:
        os.unlink(pidfile)
    except OSError:
        pass
    _emit(result)
    return 0 if result["ok"] else result["exit_code"]


def cmd_status(args) -> int:
    """done (with the result), running (pid alive), or absent: what a reconnecting host needs to know."""
    if os.path.exists(args.out):
        with open(args.out, encoding="utf-8") as f:
            _emit({"state": "done", "result": json.load(f)})
        return 0
    pid = _int(_read(args.out + ".pid"))
    if pid is not None:
        try:
            os.kill(pid, 0)
            _emit({"state": "running", "pid": pid})
            return 0
        except ProcessLookupError:
            pass
        except PermissionError:
            _emit({"state": "running", "pid": pid})
            return 0
    _emit({"state": "absent"})
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="agent.py", description="edgeprune on-device bench agent")
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info")
    info.add_argument("--trtexec", default=None)
    b = sub.add_parser("bench")
    b.add_argument("--artifact", required=True)
    b.add_argument("--runtime", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--threads", type=int, default=None)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--min-runs", type=int, default=10)
    b.add_argument("--max-runs", type=int, default=200)
    b.add_argument("--max-seconds", type=float, default=5.0)
    b.add_argument("--rel-tol", type=float, default=0.01)
    b.add_argument("--per-layer", action="store_true")
    b.add_argument("--cold-cache", action="store_true", help="flush the CPU caches before each profiled run")
    b.add_argument("--precision", default="fp32")
    b.add_argument("--compute-units", default="all", choices=["all", "cpu", "cpu_gpu", "cpu_ne"])
    b.add_argument("--trtexec", default=None)
    b.add_argument("--tool-timeout", type=float, default=1800.0)
    s = sub.add_parser("status")
    s.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.command == "info":
        _emit(device_info(args.trtexec))
        return 0
    if args.command == "status":
        return cmd_status(args)
    return cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main())
