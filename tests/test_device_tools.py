"""Native device tools (benchmark_model, benchmark_litert_model, executor_runner, trtexec) and the adb runner:
command lines and parsers, checked against real captured outputs where a tool exists here and against
format reconstructions (labelled as such in tests/fixtures/tools/) where it does not."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.devices import agent, tools
from edgeprune.devices.adb import AdbRunner, parse_android_info
from edgeprune.devices.descriptor import parse_descriptor
from edgeprune.devices.remote import agent_result_to_bench
from edgeprune.devices.runner import BenchSettings
from edgeprune.errors import DeviceError

FIX = Path(__file__).parent / "fixtures" / "tools"
HOSTILE = "/data/local/tmp/x y/m'o\"del $(reboot) `id`;rm -rf /.tflite"


def test_litert_python_benchmark_real_capture():
    r = tools.parse_litert_python_benchmark((FIX / "benchmark_litert_model.captured.txt").read_text())
    t = r.timing
    assert (t.mean_ms, t.p50_ms, t.min_ms, t.std_ms, t.runs) == (1.04, 0.91, 0.89, 0.45, 50)
    assert t.p90_ms == 1.65 and t.p99_ms == 3.82  # p95 and max: the nearest values the tool prints
    assert r.extra["init_ms"] == 1.90


@pytest.mark.slow
def test_litert_python_benchmark_live_run(tmp_path):
    """Run the benchmark tool shipped in the ai-edge-litert wheel on a real .tflite and parse what it prints today."""
    pytest.importorskip("ai_edge_litert.tools.benchmark_litert_model")
    import torch
    from torch import nn

    from edgeprune.exporters.base import ExportOptions, Precision, get_exporter

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 4)).eval()
    art = get_exporter("tflite").export(model, (torch.randn(1, 3, 16, 16),), tmp_path / "m.tflite",
                                        ExportOptions(precision=Precision.FP32))
    proc = subprocess.run([sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", f"--model={art.path}",
                           "--num_runs=20", "--warmup_runs=2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1000:]
    r = tools.parse_litert_python_benchmark(proc.stdout)
    assert r.timing.runs == 20 and r.timing.mean_ms >= 0


def test_benchmark_model_reconstructed_output_with_op_profiling():
    r = tools.parse_benchmark_model((FIX / "benchmark_model_op_profiling.reconstructed.txt").read_text())
    t = r.timing
    # the timed runs (count=840 line), not the warm-up line and not the op profiler's own 'Timings' summary
    assert t.runs == 840 and t.mean_ms == pytest.approx(1.16235) and t.p50_ms == pytest.approx(1.149)
    assert t.std_ms == pytest.approx(0.058) and t.min_ms == pytest.approx(1.089) and t.p90_ms == pytest.approx(1.265)
    assert r.peak_memory_mb == pytest.approx(9.83594)
    assert r.extra == {"init_ms": pytest.approx(11.482), "first_inference_ms": pytest.approx(2.871)}
    # regular-run op table, not the initialization table
    assert [row["op"] for row in r.per_layer][:3] == ["Convolution (NHWC, F32) IGEMM", "Convolution (NHWC, F32) DWConv",
                                                      "Convolution (NHWC, F32) GEMM"]
    assert len(r.per_layer) == 6 and r.per_layer[3]["ms"] == pytest.approx(0.391)
    assert not any("AllocateTensors" in row["name"] for row in r.per_layer)


def test_benchmark_model_without_timings_is_an_error():
    with pytest.raises(DeviceError, match="no timing line"):
        tools.parse_benchmark_model("INFO: STARTING!\nERROR: Could not open 'x.tflite'.\n")


def test_executor_runner_reconstructed_output():
    n, total = tools.parse_executor_runner((FIX / "executor_runner.reconstructed.txt").read_text())
    assert (n, total) == (10, pytest.approx(12.384375))
    assert tools.parse_executor_runner("I 00:00:00.1 executorch:x.cpp:1] Model executed successfully 3 time(s).") == (3, None)
    with pytest.raises(DeviceError, match="did not finish"):
        tools.parse_executor_runner("E 00:00:00.1 executorch:method.cpp:9] Execution of method forward failed with status 0x14")


def test_trtexec_summary_times_and_profile():
    r = tools.parse_trtexec_output((FIX / "trtexec_summary.reconstructed.txt").read_text())
    t = r.timing
    assert (t.min_ms, t.mean_ms, t.p50_ms, t.p90_ms, t.p99_ms) == (0.596, 0.618, 0.611, 0.632, 0.771)
    assert r.extra["tensorrt_version"] == "10.3.0" and r.extra["gpu_compute_median_ms"] == 0.586
    times = json.loads((FIX / "trtexec_times.reconstructed.json").read_text())
    samples = tools.parse_trtexec_times(times)
    assert len(samples) == 40 and samples[0] == times[0]["latencyMs"]
    prof = tools.parse_trtexec_profile(json.loads((FIX / "trtexec_profile.reconstructed.json").read_text()))
    assert len(prof) == 6 and prof[3] == {"name": "/6/Conv + /7/Relu", "op": "", "ms": 0.21885, "percent": 37.3}
    with pytest.raises(DeviceError, match="trtexec failed"):
        tools.parse_trtexec_output("[E] Error[4]: [network.cpp::validate::3100] bad input\n&&&& FAILED TensorRT.trtexec")


def test_trtexec_agent_result_becomes_a_bench_result():
    dev = parse_descriptor({"name": "jetson", "connection": {"transport": "ssh", "host": "j"},
                            "runtimes": {"available": ["tensorrt"]}, "clocks": {"pinned": True}})
    raw = {"ok": True, "tool": "trtexec", "times": json.loads((FIX / "trtexec_times.reconstructed.json").read_text()),
           "profile": json.loads((FIX / "trtexec_profile.reconstructed.json").read_text()),
           "stdout": (FIX / "trtexec_summary.reconstructed.txt").read_text(), "process_peak_mb": 420.0, "baseline_mb": 400.0,
           "state_before": {"clocks": {"pinned": True}, "thermal": [{"zone": "gpu-thermal", "celsius": 45.0}]},
           "state_after": {"clocks": {"pinned": True}, "thermal": [{"zone": "gpu-thermal", "celsius": 58.5}]}}
    r = agent_result_to_bench(raw, dev, "m.onnx", "tensorrt", BenchSettings(per_layer=True), {"runtime": "tensorrt"})
    assert r.timing.runs + r.timing.rejected == 40 and 0.59 < r.timing.p50_ms < 0.65
    assert len(r.per_layer) == 6 and r.peak_memory_mb is None
    assert any("rose 14 C" in w for w in r.warnings) and not any("not pinned" in w for w in r.warnings)


def test_trtexec_command_line(tmp_path):
    class A:
        warmup, max_runs, max_seconds, precision, per_layer = 3, 200, 5.0, "fp16", True

    engine = str(tmp_path / "model.fp16.engine")
    argv = agent.trtexec_argv("/usr/src/tensorrt/bin/trtexec", "/w/artifacts/ab/model.onnx", "/w/s/results/k", A, engine)
    assert argv[:2] == ["/usr/src/tensorrt/bin/trtexec", "--onnx=/w/artifacts/ab/model.onnx"]
    for flag in ("--fp16", "--dumpProfile", "--separateProfileRun", "--exportProfile=/w/s/results/k.profile.json",
                 "--exportTimes=/w/s/results/k.times.json", f"--saveEngine={engine}", "--iterations=200"):
        assert flag in argv
    # the engine built by an earlier bench is reloaded, not rebuilt
    Path(engine).write_bytes(b"serialized engine")
    argv = agent.trtexec_argv("trtexec", "/w/artifacts/ab/model.onnx", "/w/k", A, engine)
    assert f"--loadEngine={engine}" in argv and not any(a.startswith(("--onnx", "--saveEngine", "--fp16")) for a in argv)
    A.per_layer, A.precision = False, "fp32"
    argv = agent.trtexec_argv("trtexec", "/w/model.engine", "/w/k", A)
    assert "--loadEngine=/w/model.engine" in argv and not any(a.startswith(("--saveEngine", "--fp16", "--export"
                                                                              "Profile")) for a in argv)


def test_benchmark_model_and_executor_runner_command_lines():
    argv = tools.benchmark_model_argv("/data/local/tmp/benchmark_model", HOSTILE, threads=4, warmup=3, runs=50,
                                      op_profiling=True)
    assert argv[1] == f"--graph={HOSTILE}" and "--num_threads=4" in argv and "--enable_op_profiling=true" in argv
    assert "--report_peak_memory_footprint=true" in argv
    argv = tools.executor_runner_argv("/data/local/tmp/executor_runner", "/x/model.pte", executions=10, threads=2,
                                      etdump="/x/run.etdp")
    assert argv[1:] == ["--model_path=/x/model.pte", "--num_executions=10", "--cpu_threads=2", "--etdump_path=/x/run.etdp"]


def _phone(**conn):
    return parse_descriptor({"name": "phone", "connection": {"transport": "adb", **conn},
                             "runtimes": {"available": ["litert", "executorch"]}, "compute": {"threads": 4}})


def test_adb_shell_line_quotes_every_argument():
    runner = AdbRunner(_phone(serial="R5CT 123"))
    argv = runner.shell_argv(tools.benchmark_model_argv("/data/local/tmp/benchmark_model", HOSTILE, threads=4,
                                                        warmup=1, runs=5))
    assert argv[:4] == ["adb", "-s", "R5CT 123", "shell"] and len(argv) == 5
    # the phone's sh splits the one line back into exactly the arguments we meant, nothing executed
    assert shlex.split(argv[4])[1] == f"--graph={HOSTILE}"
    assert runner.remote_artifact(Path("/tmp/my model;$(x).tflite"), "ab" * 32) == \
        f"/data/local/tmp/edgeprune/artifacts/{'ab' * 16}/model.tflite"


def test_adb_shell_line_survives_a_real_posix_shell(tmp_path):
    """The line `adb shell` hands the phone's sh: run it through a real sh and get the exact arguments back."""
    runner = AdbRunner(_phone())
    weird = [HOSTILE, "a b", "$(touch PWNED)", "`touch PWNED`", "'", '"', ";", "&&", "|", "*", "~", "\\"]
    line = runner.shell_argv(["printf", "%s\\n", *weird])[-1]
    out = subprocess.run(["sh", "-c", line], capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert out.splitlines() == weird
    assert not list(tmp_path.iterdir())


def test_adb_missing_binary_is_a_clear_error(tmp_path):
    runner = AdbRunner(_phone(adb=str(tmp_path / "no-adb")))
    art = tmp_path / "m.tflite"
    art.write_bytes(b"x")
    with pytest.raises(DeviceError, match=r"adb not found .*platform-tools"):
        runner.bench(art, "litert")
    odd = parse_descriptor({"name": "phone", "connection": {"transport": "adb"}, "runtimes": {"available": ["onnxruntime"]}})
    with pytest.raises(DeviceError, match="runs litert and executorch"):
        AdbRunner(odd).bench(art, "onnxruntime")


def test_android_device_state_parsing():
    info = parse_android_info({"ro.product.model": "Pixel 8", "ro.board.platform": "zuma",
                               "ro.build.version.release": "15", "ro.product.cpu.abi": "arm64-v8a"},
                              "schedutil\nschedutil\nperformance\n", "cpu-0-0 41500\nbattery 31\nskin-therm 82000\n",
                              {"benchmark_model": True, "executor_runner": False})
    assert info["model"] == "Pixel 8" and info["clocks"]["pinned"] is False and len(info["clocks"]["governors"]) == 3
    assert [z["celsius"] for z in info["thermal"]] == [41.5, 31.0, 82.0]
    assert info["tools"]["executor_runner"] is False


def test_agent_status_reports_absent_running_done(tmp_path, capsys):
    out = str(tmp_path / "r.json")
    assert agent.main(["status", "--out", out]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "absent"
    Path(out + ".pid").write_text(str(__import__("os").getpid()))
    agent.main(["status", "--out", out])
    assert json.loads(capsys.readouterr().out) == {"state": "running", "pid": __import__("os").getpid()}
    Path(out).write_text(json.dumps({"ok": True, "samples_ms": [1.0]}))
    agent.main(["status", "--out", out])
    assert json.loads(capsys.readouterr().out)["result"]["samples_ms"] == [1.0]


def test_agent_has_no_edgeprune_imports():
    """It runs on devices without edgeprune: standard library + the runtime only."""
    src = Path(agent.__file__).read_text()
    assert "import edgeprune" not in src and "from edgeprune" not in src


def test_agent_parses_as_python_3_8():
    """Boards lag behind (JetPack 5 ships Python 3.8): the agent must not need newer syntax."""
    import ast

    ast.parse(Path(agent.__file__).read_text(), feature_version=(3, 8))


def test_tensorrt_precision_comes_from_the_exporters_trtexec_script(tmp_path):
    """Export for TensorRT fp16 and int8 writes the build flag into <name>.trtexec.sh; the runner reads it back."""
    import torch
    from torch import nn

    from edgeprune.exporters.base import ExportOptions, Precision, get_exporter

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    x = (torch.randn(1, 3, 8, 8),)
    exp = get_exporter("tensorrt")
    fp16 = exp.export(model, x, tmp_path / "a b" / "m16.onnx", ExportOptions(precision=Precision.FP16)).path
    fp32 = exp.export(model, x, tmp_path / "m32.onnx", ExportOptions(precision=Precision.FP32)).path
    assert tools.tensorrt_precision(fp16) == "fp16"
    assert tools.tensorrt_precision(fp32) == "fp32"
    assert tools.tensorrt_precision(tmp_path / "no-script.onnx") == "fp32"


def test_warnings_for_unpinned_clocks_heat_and_noise():
    from edgeprune.devices.remote import noise_warning, state_warnings
    from edgeprune.runtimes.timing import summarize

    board = parse_descriptor({"name": "pi", "connection": {"transport": "ssh", "host": "pi"},
                              "runtimes": {"available": ["onnxruntime"]}, "clocks": {"notes": "set governor"}})
    before = {"clocks": {"pinned": False}, "thermal": [{"zone": "cpu", "celsius": 50.0}]}
    after = {"clocks": {"pinned": False}, "thermal": [{"zone": "cpu", "celsius": 84.0}]}
    w = state_warnings(board, before, after)
    assert any("not pinned on pi (set governor)" in x for x in w) and any("84 C" in x for x in w)
    assert state_warnings(board, {"clocks": {"pinned": True}}, {"clocks": {"pinned": True}, "thermal": []}) == []
    assert noise_warning(summarize([1.0, 1.02, 0.99, 1.01, 1.0])) == []
    assert "noisy run" in noise_warning(summarize([1.0, 1.6, 0.7, 1.4, 0.8, 1.3]))[0]


def test_trtexec_banner_versions():
    assert agent.trtexec_banner_version("&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec") == "10.3.0"
    assert agent.trtexec_banner_version("&&&& PASSED TensorRT.trtexec [TensorRT v8601] # trtexec") == "8.6.1"
    assert agent.trtexec_banner_version("usage: trtexec") is None
