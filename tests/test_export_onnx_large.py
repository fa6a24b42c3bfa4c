"""Models over protobuf's 2 GB limit: ONNX weights go to a `.data` side file the manifest hashes.

The threshold is lowered so a tiny model takes the same path vit_h_14 would (the real size would
take minutes and gigabytes here)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import edgeprune.exporters.onnx as onnx_exporter
import edgeprune.exporters.tensorrt as trt_exporter
from edgeprune.export import artifact_bytes, export_model, verify_dir
from edgeprune.models.inputs import parse_inputs as parse_input_specs

pytestmark = pytest.mark.slow


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))


@pytest.fixture
def large(monkeypatch):
    monkeypatch.setattr(onnx_exporter, "EXTERNAL_DATA_BYTES", 0)
    monkeypatch.setattr(trt_exporter, "EXTERNAL_DATA_BYTES", 0)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_weights_in_a_side_file_pass_parity_and_verify(tmp_path, large, precision):
    torch.manual_seed(0)
    specs = parse_input_specs("1x3x16x16")
    calib = [(torch.randn(1, 3, 16, 16),) for _ in range(4)] if precision == "int8" else None
    out = tmp_path / "out"
    export_model(Net().eval(), specs, "onnx", precision, out, calibration=calib)
    man = json.loads((out / "manifest.json").read_text())
    (art,) = man["artifacts"]
    assert art["status"] == "ok", art
    assert art["parity"]["passed"]
    data = out / f"model_onnx_{precision}.onnx.data"
    assert [s["file"] for s in art["side_files"]] == [data.name]
    assert art["side_files"][0]["size_bytes"] == data.stat().st_size > 0
    graph = out / f"model_onnx_{precision}.onnx"
    assert artifact_bytes(art) == graph.stat().st_size + data.stat().st_size  # what ships, weights included
    # the graph refers to its weights by the final name, and nothing temporary is left behind
    assert sorted(p.name for p in out.iterdir() if "onnx" in p.name) == [f"model_onnx_{precision}.onnx", data.name]
    assert data.name.encode() in (out / f"model_onnx_{precision}.onnx").read_bytes()
    assert verify_dir(out).passed
    if precision == "int8":
        assert any(n.startswith("int8 QDQ per-channel") for n in art["notes"])
    size = data.stat().st_size  # exporting again replaces the data file, not appends to it
    export_model(Net().eval(), specs, "onnx", precision, out, calibration=calib)
    assert data.stat().st_size == size and verify_dir(out).passed
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    rep = verify_dir(out)
    assert not rep.passed and rep.problems[0].status == "hash_mismatch"


def test_small_models_stay_single_file(tmp_path):
    out = tmp_path / "out"
    export_model(Net().eval(), parse_input_specs("1x3x16x16"), "onnx", "fp32", out)
    art = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    assert art["status"] == "ok" and art["side_files"] == []
    assert not list(out.glob("*.data"))


def test_tensorrt_refuses_a_model_over_2gb_with_the_fix(tmp_path, large):
    out = tmp_path / "out"
    export_model(Net().eval(), parse_input_specs("1x3x16x16"), "tensorrt", "fp32", out)
    art = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    assert art.get("status") != "ok"
    assert "over 2 GB" in art["error"] and "--format onnx" in art["error"]
