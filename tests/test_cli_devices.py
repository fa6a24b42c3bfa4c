"""`edgeprune devices list|check` and `edgeprune bench` on the local device (real runtimes, real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "EDGEPRUNE_QUIET": "1"}


def cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "edgeprune.cli.main", *args], capture_output=True, text=True,
                          env=env or ENV, timeout=timeout)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """A real `edgeprune export`-style directory: an ONNX artifact plus manifest.json."""
    import torch
    from torch import nn

    from edgeprune.exporters.base import ExportOptions, Precision, get_exporter

    d = tmp_path_factory.mktemp("export")
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten()).eval()
    art = get_exporter("onnx").export(model, (torch.randn(1, 3, 12, 12),), d / "model_fp32.onnx",
                                      ExportOptions(precision=Precision.FP32))
    (d / "manifest.json").write_text(json.dumps({"artifacts": [
        {"format": "onnx", "precision": "fp32", "status": "ok", "file": art.path.name},
        {"format": "executorch", "precision": "fp32", "status": "failed", "file": None}]}))
    return d


def test_devices_list_shows_shipped_and_user_descriptors(tmp_path):
    (tmp_path / "pi5.toml").write_text('name = "pi5"\n[connection]\ntransport = "ssh"\nhost = "pi5.local"\n'
                                       '[runtimes]\navailable = ["onnxruntime", "litert"]\n[compute]\nthreads = 4\n'
                                       '[clocks]\npinned = true\n')
    proc = cli("devices", "list", "--json", env={**ENV, "EDGEPRUNE_DEVICES": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    devs = {d["name"]: d for d in json.loads(proc.stdout)}
    assert {"host", "jetson-orin-nano", "android-phone", "mac-coreml", "pi5"} <= set(devs)
    assert devs["pi5"] == {**devs["pi5"], "transport": "ssh", "runtimes": ["onnxruntime", "litert"], "threads": 4,
                           "clocks_pinned": True}
    table = cli("devices", "list", env={**ENV, "EDGEPRUNE_DEVICES": str(tmp_path)})
    assert table.returncode == 0 and "pi5" in table.stdout and "jetson-orin-nano" in table.stdout


def test_devices_check_host():
    import onnxruntime

    proc = cli("devices", "check", "host", "--json")
    assert proc.returncode == 0, proc.stderr
    [report] = json.loads(proc.stdout)
    assert report["reachable"] and report["ok"]
    rows = {r["runtime"]: r for r in report["runtimes"]}
    assert rows["onnxruntime"]["version"] == onnxruntime.__version__
    if sys.platform != "darwin":
        assert not rows.get("coreml", {}).get("available", False)  # coremltools cannot predict on Linux


def test_devices_check_phone_without_adb_is_one_line_error(tmp_path):
    toml = tmp_path / "phone.toml"
    toml.write_text(f'name = "phone"\n[connection]\ntransport = "adb"\nadb = "{tmp_path / "no-adb"}"\n'
                    '[runtimes]\navailable = ["litert"]\n')
    proc = cli("devices", "check", str(toml))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: adb not found")
    assert "Traceback" not in proc.stderr


def test_bench_export_dir_on_host_with_per_layer(export_dir):
    proc = cli("bench", str(export_dir), "--device", "host", "--runs", "8", "--per-layer", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    [row] = json.loads(proc.stdout)  # the failed executorch entry in the manifest is not benched
    assert row["device"] == "host" and row["label"] == "onnx/fp32" and row["runtime"] == "onnxruntime"
    assert row["latency_ms"]["runs"] + row["latency_ms"]["rejected"] == 8
    assert any(layer["op"] == "Conv" for layer in row["per_layer"])
    human = cli("bench", str(export_dir / "model_fp32.onnx"), "--device", "host", "--runs", "5", "--per-layer")
    assert human.returncode == 0 and "p50 ms" in human.stdout and "top 5 layers" in human.stdout
    cold = cli("bench", str(export_dir / "model_fp32.onnx"), "--device", "host", "--runs", "5", "--per-layer",
               "--cold-cache", "--json")
    assert cold.returncode == 0, cold.stderr[-2000:]
    assert {layer["op"] for layer in json.loads(cold.stdout)[0]["per_layer"]} == {layer["op"] for layer in row["per_layer"]}
    alone = cli("bench", str(export_dir / "model_fp32.onnx"), "--device", "host", "--cold-cache")
    assert alone.returncode != 0 and alone.stderr.strip().splitlines()[-1] == \
        "Error: --cold-cache changes the per-layer profile only; add --per-layer"


def test_bench_bad_inputs_are_one_line_errors(tmp_path, export_dir):
    (tmp_path / "notes.txt").write_text("x")
    for args, expected in (
        ([str(tmp_path / "missing.onnx")], "artifact not found"),
        ([str(tmp_path / "notes.txt")], "cannot tell which runtime runs notes.txt"),
        ([str(tmp_path)], "without manifest.json"),
        ([str(export_dir), "--device", "nosuchdevice"], "unknown device 'nosuchdevice'"),
        ([str(export_dir), "--device", "host,host"], "listed twice"),
    ):
        proc = cli("bench", *args, *([] if "--device" in args else ["--device", "host"]))
        assert proc.returncode != 0, args
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("Error:") and expected in last, (args, proc.stderr[-500:])


def test_bench_out_file_resumes_an_interrupted_run(export_dir, tmp_path):
    out = tmp_path / "results.json"
    art = str(export_dir / "model_fp32.onnx")
    first = cli("bench", art, "--device", "host", "--runs", "5", "--out", str(out), "--json")
    assert first.returncode == 0, first.stderr[-1500:]
    data = json.loads(out.read_text())
    assert data["complete"] and data["results"][0]["key"]
    # pretend the run was cut off after this measurement; mark the row so reuse is visible
    data["complete"] = False
    data["results"][0]["latency_ms"]["p50_ms"] = 123.0
    out.write_text(json.dumps(data))
    resumed = cli("bench", art, "--device", "host", "--runs", "5", "--out", str(out), "--json")
    assert resumed.returncode == 0
    assert json.loads(resumed.stdout)[0]["latency_ms"]["p50_ms"] == 123.0  # kept, not measured again
    # other settings are another measurement; --fresh measures again
    other = cli("bench", art, "--device", "host", "--runs", "6", "--out", str(out), "--json")
    assert json.loads(other.stdout)[0]["latency_ms"]["p50_ms"] != 123.0
    data["complete"] = False
    out.write_text(json.dumps(data))
    fresh = cli("bench", art, "--device", "host", "--runs", "5", "--out", str(out), "--json", "--fresh")
    assert json.loads(fresh.stdout)[0]["latency_ms"]["p50_ms"] != 123.0
