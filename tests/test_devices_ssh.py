"""The ssh runner end to end against a real OpenSSH server on loopback.

The "device" is this machine reached through sshd with generated keys; its remote python is
this virtual environment's python, so the agent runs real ONNX Runtime and ExecuTorch there.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sshd import sshd_binary, start_sshd  # noqa: E402

from edgeprune.devices.check import check_device  # noqa: E402
from edgeprune.devices.descriptor import parse_descriptor  # noqa: E402
from edgeprune.devices.runner import BenchSettings, get_runner  # noqa: E402
from edgeprune.errors import DeviceError  # noqa: E402

pytestmark = [
    pytest.mark.ssh,
    pytest.mark.skipif(sshd_binary() is None,
                       reason="no sshd binary (OpenSSH server not installed; scripts/setup.sh installs openssh-server)"),
]
QUICK = BenchSettings(warmup=1, min_runs=5, max_runs=30, max_seconds=1.0)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A small real model exported to ONNX and ExecuTorch, plus the ONNX under a hostile file name."""
    import torch
    from torch import nn

    from edgeprune.exporters.base import ExportOptions, Precision, get_exporter

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    x = (torch.randn(1, 3, 16, 16),)
    d = tmp_path_factory.mktemp("artifacts")
    out = {}
    for fmt in ("onnx", "executorch"):
        e = get_exporter(fmt)
        out[fmt] = e.export(model, x, d / f"tiny{e.suffix}", ExportOptions(precision=Precision.FP32)).path
    hostile_dir = d / "dir with spaces; $(touch PWNED_DIR)"
    hostile_dir.mkdir()
    out["hostile"] = hostile_dir / "m'o\"del $(touch PWNED) `touch PWNED2`;rm -rf x.onnx"
    shutil.copy(out["onnx"], out["hostile"])
    return out


def descriptor(sshd, workdir: Path, **conn):
    c = {"transport": "ssh", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
         "identity_file": str(sshd.identity), "known_hosts": str(sshd.known_hosts), "workdir": str(workdir),
         "python": sys.executable, "connect_timeout_s": 5, "command_timeout_s": 300}
    c.update(conn)
    return parse_descriptor({"name": "loopback", "connection": c,
                             "runtimes": {"available": ["onnxruntime", "executorch", "litert"]},
                             "compute": {"threads": 1}}, "loopback.toml")


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            pass
    return pids


def test_check_reports_runtimes_versions_and_clocks(sshd, tmp_path):
    import onnxruntime

    report = check_device(descriptor(sshd, tmp_path / "wd"))
    assert report.reachable and report.ok, report.problems
    rows = {r["runtime"]: r for r in report.runtimes}
    assert rows["onnxruntime"]["available"] and rows["onnxruntime"]["version"] == onnxruntime.__version__
    assert rows["executorch"]["available"]
    assert report.clocks_pinned in (True, False, None)
    assert not glob.glob(str(tmp_path / "wd" / "session-*")), "check left a session directory behind"


def test_bench_onnx_and_pte_end_to_end(sshd, artifacts, tmp_path):
    import onnxruntime

    wd = tmp_path / "remote work"  # a space in the remote workdir too
    runner = get_runner(descriptor(sshd, wd))
    try:
        onnx = runner.bench(artifacts["onnx"], "onnxruntime", BenchSettings(**{**QUICK.__dict__, "per_layer": True}))
        assert onnx.device == "loopback" and onnx.runtime == "onnxruntime"
        t = onnx.timing
        assert 0 < t.min_ms <= t.p50_ms <= t.p90_ms <= t.p99_ms and t.runs >= 3
        assert onnx.fingerprint["runtime_version"] == onnxruntime.__version__
        # the model's own cost: process peak minus the RSS with onnxruntime imported (a tiny model: small)
        assert onnx.peak_memory_mb is not None and 0 <= onnx.peak_memory_mb < 300
        ops = {layer["op"] for layer in onnx.per_layer}
        assert "Conv" in ops, onnx.per_layer  # real ORT profiling from the remote side
        assert abs(sum(layer["percent"] for layer in onnx.per_layer) - 100) < 1e-6

        pte = runner.bench(artifacts["executorch"], "executorch", BenchSettings(**{**QUICK.__dict__, "per_layer": True}))
        assert pte.timing.p50_ms > 0 and pte.fingerprint["runtime"] == "executorch"
        # ETDump read by the ExecuTorch Inspector on the device: XNNPACK's own operator events
        assert any("Convolution" in layer["name"] for layer in pte.per_layer), (pte.per_layer, pte.warnings)

        runner.bench(artifacts["onnx"], "onnxruntime", QUICK)
        pushes = [e["event"] for e in runner.events if e["event"].startswith("push")]
        assert pushes == ["pushed", "pushed"], runner.events
        assert glob.glob(str(wd / "session-*" / "results" / "*.json")), "results are written on the device"
    finally:
        runner.close()
    assert not glob.glob(str(wd / "session-*")), "the per-session remote temp dir must be removed at close"
    assert not _processes_mentioning(runner._ctl_dir), "the shared ssh connection must end at close"
    assert len(list((wd / "artifacts").iterdir())) == 2  # content-addressed cache stays for the next session
    # a new session finds the same content on the device and does not push it again
    second = get_runner(descriptor(sshd, wd))
    try:
        second.push(artifacts["onnx"])
    finally:
        second.close()
    assert [e["event"] for e in second.events] == ["push_skipped"]


def test_hostile_file_names_are_quoted(sshd, artifacts, tmp_path, monkeypatch):
    wd = tmp_path / "w d;$(touch PWNED_WD)"
    monkeypatch.chdir(tmp_path)
    runner = get_runner(descriptor(sshd, wd))
    try:
        result = runner.bench(artifacts["hostile"], "onnxruntime", QUICK)
    finally:
        runner.close()
    assert result.timing.p50_ms > 0
    assert result.artifact == str(artifacts["hostile"])
    home = Path(os.path.expanduser("~"))
    for where in (tmp_path, wd, home, artifacts["hostile"].parent, Path.cwd()):
        assert not list(Path(where).glob("PWNED*")), f"a file name was executed as a command in {where}"


def test_connection_dropped_mid_run_resumes_without_remeasuring(sshd, artifacts, tmp_path):
    wd = tmp_path / "wd"
    runner = get_runner(descriptor(sshd, wd))
    runner.backoff_s = 0.3
    seen: dict = {}

    def drop_when_running():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pidfiles = glob.glob(str(wd / "session-*" / "results" / "*.pid"))
            if pidfiles:
                seen["pid"] = int(Path(pidfiles[0]).read_text())
                time.sleep(0.5)
                seen["killed"] = sshd.drop_connections()
                return
            time.sleep(0.05)

    long_run = BenchSettings(warmup=1, min_runs=10**6, max_runs=10**8, max_seconds=3.0, rel_tol=0.0)
    runner.push(artifacts["onnx"])  # push first so the drop lands in the timed run
    dropper = threading.Thread(target=drop_when_running)
    dropper.start()
    try:
        result = runner.bench(artifacts["onnx"], "onnxruntime", long_run)
    finally:
        dropper.join()
        runner.close()
    assert seen.get("killed"), "the test did not manage to drop the connection"
    events = [e["event"] for e in runner.events]
    assert "connection_lost" in events and "resumed" in events, runner.events
    assert "rerun" not in events
    resumed = next(e for e in runner.events if e["event"] == "resumed")
    assert resumed["pid"] == seen["pid"], "the result must come from the run that was in progress when the link dropped"
    assert result.timing.runs > 100


def test_missing_runtime_on_device_is_a_clear_error(sshd, artifacts, tmp_path):
    # a python without site-packages: the device has python but no onnxruntime
    wrapper = tmp_path / "bare-python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    wrapper.chmod(0o755)
    runner = get_runner(descriptor(sshd, tmp_path / "wd", python=str(wrapper)))
    try:
        with pytest.raises(DeviceError, match=r"has no onnxruntime .*pip install onnxruntime"):
            runner.bench(artifacts["onnx"], "onnxruntime", QUICK)
    finally:
        runner.close()


def test_missing_python_on_device(sshd, artifacts, tmp_path):
    runner = get_runner(descriptor(sshd, tmp_path / "wd", python="/nonexistent/python3"))
    try:
        with pytest.raises(DeviceError, match=r"python '/nonexistent/python3' was not found"):
            runner.bench(artifacts["onnx"], "onnxruntime", QUICK)
    finally:
        runner.close()


def test_wrong_key_is_a_clear_error(sshd, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    report = check_device(descriptor(sshd, tmp_path / "wd", identity_file=str(other)))
    assert not report.reachable
    assert "refused the key" in report.problems[0] and str(other) in report.problems[0]


def test_unknown_or_changed_host_key_is_refused(sshd, tmp_path):
    # strict checking against a known_hosts file holding a different key for this host:port
    fake = tmp_path / "fake_host"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(fake)], check=True)
    kind, key = fake.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    report = check_device(descriptor(sshd, tmp_path / "wd", known_hosts=str(known)))
    assert not report.reachable and "host key" in report.problems[0]
    # and an empty known_hosts file: unknown host, still refused (no blind trust)
    known.write_text("")
    report = check_device(descriptor(sshd, tmp_path / "wd", known_hosts=str(known)))
    assert not report.reachable and "host key" in report.problems[0]


def test_unreachable_device_fails_fast_with_the_fix(sshd, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    t0 = time.monotonic()
    report = check_device(descriptor(sshd, tmp_path / "wd", port=port))
    assert not report.reachable and "unreachable" in report.problems[0] and str(port) in report.problems[0]
    assert time.monotonic() - t0 < 15


def test_cli_bench_several_devices_in_parallel(sshd, artifacts, tmp_path):
    wd = tmp_path / "wd"
    toml = tmp_path / "loopback.toml"
    toml.write_text(
        'name = "loopback"\n[connection]\ntransport = "ssh"\nhost = "127.0.0.1"\n'
        f'port = {sshd.port}\nuser = "{sshd.user}"\nidentity_file = "{sshd.identity}"\n'
        f'known_hosts = "{sshd.known_hosts}"\nworkdir = "{wd}"\npython = "{sys.executable}"\n'
        '[runtimes]\navailable = ["onnxruntime", "executorch"]\n[compute]\nthreads = 1\n')
    out = tmp_path / "results.json"
    env = {**os.environ, "EDGEPRUNE_QUIET": "1"}
    proc = subprocess.run([sys.executable, "-m", "edgeprune.cli.main", "bench", str(artifacts["onnx"]),
                           str(artifacts["executorch"]), "--device", f"host,{toml}", "--runs", "5", "--json",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    by = {(r["device"], Path(r["artifact"]).suffix): r for r in rows}
    assert set(by) == {("host", ".onnx"), ("host", ".pte"), ("loopback", ".onnx"), ("loopback", ".pte")}
    for r in rows:
        assert r["error"] is None and r["latency_ms"]["runs"] + r["latency_ms"]["rejected"] == 5 and r["latency_ms"]["p50_ms"] > 0
    assert by[("loopback", ".onnx")]["fingerprint"]["hostname"]  # came from the agent, not the local fingerprint
    saved = json.loads(out.read_text())
    assert saved["complete"] and len(saved["results"]) == 4

    check = subprocess.run([sys.executable, "-m", "edgeprune.cli.main", "devices", "check", str(toml)],
                           capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0 and "reachable" in check.stdout and "onnxruntime" in check.stdout


def test_measure_module_times_on_the_ssh_device(sshd, tmp_path):
    """The path tables and the prune check use: export here, time on the remote runner."""
    import torch
    from torch import nn

    from edgeprune.latency.measure import measure_module
    from edgeprune.models.inputs import parse_inputs

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    result = measure_module(model, parse_inputs("1x3x16x16"), device=descriptor(sshd, tmp_path / "wd"),
                            runtime="onnxruntime", settings=QUICK)
    assert result.device == "loopback" and result.timing.p50_ms > 0
    assert result.fingerprint["hostname"]  # reported by the agent on the device
    assert not glob.glob(str(tmp_path / "wd" / "session-*"))


def test_tensorrt_without_trtexec_is_a_clear_error(sshd, artifacts, tmp_path):
    desc = parse_descriptor({"name": "fake-jetson", "connection": {
        "transport": "ssh", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
        "identity_file": str(sshd.identity), "known_hosts": str(sshd.known_hosts), "workdir": str(tmp_path / "wd"),
        "python": sys.executable, "trtexec": str(tmp_path / "no such dir" / "trtexec")},
        "runtimes": {"available": ["tensorrt"]}}, "fake-jetson.toml")
    runner = get_runner(desc)
    try:
        with pytest.raises(DeviceError, match=r"has no tensorrt .*install TensorRT/JetPack"):
            runner.bench(artifacts["onnx"], "tensorrt", QUICK)
    finally:
        runner.close()


def test_directory_artifacts_are_pushed_whole(sshd, tmp_path):
    """A Core ML .mlpackage is a directory: it travels as one tar stream and lands complete."""
    pkg = tmp_path / "my model.mlpackage"
    (pkg / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (pkg / "Manifest.json").write_text('{"fileFormatVersion": "1.0.0"}')
    (pkg / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(bytes(range(256)) * 64)
    runner = get_runner(descriptor(sshd, tmp_path / "wd"))
    try:
        remote = Path(runner.push(pkg))
    finally:
        runner.close()
    assert remote.name == "model.mlpackage"
    assert (remote / "Manifest.json").read_text() == (pkg / "Manifest.json").read_text()
    assert (remote / "Data" / "com.apple.CoreML" / "model.mlmodel").read_bytes() == bytes(range(256)) * 64


def test_profile_builds_the_table_on_the_ssh_device(sshd, tmp_path):
    """`edgeprune profile --device <ssh device>`: the micro-benchmarks run on the device, its fingerprint is recorded."""
    (tmp_path / "m.py").write_text("import torch\nfrom torch import nn\n\ndef build():\n    torch.manual_seed(0)\n"
                                   "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()\n")
    toml = tmp_path / "loopback.toml"
    toml.write_text(
        'name = "loopback"\n[connection]\ntransport = "ssh"\nhost = "127.0.0.1"\n'
        f'port = {sshd.port}\nuser = "{sshd.user}"\nidentity_file = "{sshd.identity}"\n'
        f'known_hosts = "{sshd.known_hosts}"\nworkdir = "{tmp_path / "wd"}"\npython = "{sys.executable}"\n'
        '[runtimes]\navailable = ["onnxruntime"]\n[compute]\nthreads = 1\n')
    table = tmp_path / "table.json"
    proc = subprocess.run([sys.executable, "-m", "edgeprune.cli.main", "profile", f"{tmp_path / 'm.py'}:build",
                           "--input", "1x3x16x16", "--device", str(toml), "--budget", "5", "--out", str(table)],
                          capture_output=True, text=True, env={**os.environ, "EDGEPRUNE_QUIET": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads(table.read_text())["meta"]
    assert meta["device"] == "loopback" and meta["fingerprint"]["hostname"]  # from the agent on the device
    assert not glob.glob(str(tmp_path / "wd" / "session-*"))


def test_leftovers_of_dead_runners_are_swept(sshd, tmp_path):
    wd = tmp_path / "wd"
    old_session, live_session = wd / "session-dead01", wd / "session-live01"
    cut_push = wd / "artifacts" / "ab12" / ".incoming-4242"
    for d in (old_session, live_session, cut_push.parent):
        d.mkdir(parents=True)
    cut_push.write_bytes(b"half a model")
    long_ago = time.time() - 3 * 86400
    os.utime(cut_push, (long_ago, long_ago))
    os.utime(old_session, (long_ago, long_ago))
    runner = get_runner(descriptor(sshd, wd))
    try:
        runner.info()
    finally:
        runner.close()
    assert not old_session.exists() and not cut_push.exists()
    assert live_session.exists()  # another runner's session in progress is left alone


def test_tensorrt_plumbing_with_a_trtexec_stand_in(sshd, artifacts, tmp_path):
    """No TensorRT here: a stand-in `trtexec` replays the reconstructed fixtures, so what is exercised is the
    plumbing (remote argv, engine cache, exported JSON read back, parsed on the host), not TensorRT itself."""
    fixtures = Path(__file__).parent / "fixtures" / "tools"
    log = tmp_path / "trtexec-calls.txt"
    stand_in = tmp_path / "bin dir" / "trtexec"
    stand_in.parent.mkdir()
    stand_in.write_text(f"""#!{sys.executable}
import shutil, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
open({str(log)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
if "exportTimes" in args:
    shutil.copy({str(fixtures / "trtexec_times.reconstructed.json")!r}, args["exportTimes"])
if "exportProfile" in args:
    shutil.copy({str(fixtures / "trtexec_profile.reconstructed.json")!r}, args["exportProfile"])
if "saveEngine" in args:
    open(args["saveEngine"], "wb").write(b"engine")
print(open({str(fixtures / "trtexec_summary.reconstructed.txt")!r}).read())
""")
    stand_in.chmod(0o755)
    desc = parse_descriptor({"name": "fake-jetson", "connection": {
        "transport": "ssh", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
        "identity_file": str(sshd.identity), "known_hosts": str(sshd.known_hosts), "workdir": str(tmp_path / "wd"),
        "python": sys.executable, "trtexec": str(stand_in)},
        "runtimes": {"available": ["tensorrt"]}, "clocks": {"pinned": True}}, "fake-jetson.toml")
    onnx = tmp_path / "m.onnx"
    shutil.copy(artifacts["onnx"], onnx)
    onnx.with_suffix(".trtexec.sh").write_text("#!/bin/sh\ncd \"$(dirname \"$0\")\" && trtexec --onnx=m.onnx "
                                                "--saveEngine=m.engine --fp16 --shapes=x:1x3x16x16\n")
    runner = get_runner(desc)
    try:
        first = runner.bench(onnx, "tensorrt", BenchSettings(per_layer=True))
        second = runner.bench(onnx, "tensorrt", BenchSettings())
    finally:
        runner.close()
    calls = [c for c in log.read_text().splitlines() if c != "--help"]  # --help: the version probe of `check`
    assert "--fp16" in calls[0] and "--saveEngine=" in calls[0] and "--dumpProfile" in calls[0]
    assert "--loadEngine=" in calls[1] and "--onnx=" not in calls[1]  # the engine built first is reused
    assert first.timing.runs + first.timing.rejected == 40 and len(first.per_layer) == 6
    assert second.per_layer == [] and second.runtime == "tensorrt"
    assert first.fingerprint["runtime_version"] == "10.3.0"  # from the [TensorRT v100300] banner
