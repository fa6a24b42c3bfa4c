"""int8 on a trained model with real data: the shipped Fashion-MNIST CNN, parity on held-out real images."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprune.export import export_model_spec, verify_dir

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_trained_cnn_int8_agrees_with_pytorch_on_real_images(tmp_path):
    out = tmp_path / "int8"
    data = export_model_spec(f"{REPO / 'examples' / 'fashion_cnn.py'}:trained", input_text="1x1x28x28",
                             formats="onnx,executorch,tflite", precision="int8", out_dir=out,
                             calib="fashion-mnist", calib_batches=8)
    assert [r["samples"] for r in data["references"].values()] == [16]
    for a in data["artifacts"]:
        p = a["parity"]
        assert a["status"] == "ok", (a["format"], a.get("error"), p)
        # a trained net quantizes far better than the loose int8 gate: hold it to that
        assert p["cosine"] > 0.999 and p["top1_agreement"] >= 15 / 16, (a["format"], p)
    assert data["artifacts"][1]["details"]["delegation"]["non_delegated_nodes"] == 0  # all on XNNPACK
    assert verify_dir(out).passed
