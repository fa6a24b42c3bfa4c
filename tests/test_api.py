"""The public Python API: every advertised verb resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import edgeprune


def test_every_public_name_resolves():
    for name in edgeprune.__all__:
        assert getattr(edgeprune, name) is not None, name
    assert callable(edgeprune.prune) and callable(edgeprune.export_model) and callable(edgeprune.build_table)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'prune_everything'"):
        edgeprune.prune_everything  # noqa: B018


def test_import_does_not_load_torch():
    # `edgeprune --help` and CI scripts that only read manifests must not pay for torch
    code = "import sys, edgeprune; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_api_round_trip_on_a_tiny_model(tmp_path):
    """Load -> export -> verify through the top-level names only."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    specs = edgeprune.parse_inputs("1x1x16x16")
    manifest = edgeprune.export_model(model, specs, "onnx", "fp32", tmp_path / "out")
    report = edgeprune.verify_dir(tmp_path / "out")
    assert report.passed, report.to_json()
    assert [a["format"] for a in manifest.artifacts] == ["onnx"]
    assert torch.is_tensor(model(torch.zeros(1, 1, 16, 16)))
