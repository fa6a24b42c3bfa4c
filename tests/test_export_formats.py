"""End-to-end export of a tiny real model to every format and precision that runs here, parity asserted."""

from __future__ import annotations

import json
import shlex

import numpy as np
import onnx
import pytest

from edgeprune.export import export_model_spec, verify_dir
from edgeprune.files import sha256_path

pytestmark = pytest.mark.slow
INPUT = "1x3x32x32"


def _by_format(data: dict, precision: str) -> dict:
    return {a["format"]: a for a in data["artifacts"] if a["precision"] == precision}


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, tiny_model_file):
    out = tmp_path_factory.mktemp("fp32")
    data = export_model_spec(f"{tiny_model_file}:build", input_text=INPUT, formats="all", precision="fp32", out_dir=out)
    return out, data


@pytest.fixture(scope="module")
def int8(tmp_path_factory, tiny_model_file):
    out = tmp_path_factory.mktemp("int8")
    data = export_model_spec(f"{tiny_model_file}:build", input_text=INPUT, formats="all", precision="int8", out_dir=out,
                             calib="fashion-mnist", calib_batches=4)
    return out, data


@pytest.fixture(scope="module")
def fp16(tmp_path_factory, tiny_model_file):
    out = tmp_path_factory.mktemp("fp16")
    data = export_model_spec(f"{tiny_model_file}:build", input_text=INPUT, formats="all", precision="fp16", out_dir=out)
    return out, data


def test_fp32_every_format_exports_with_parity(fp32):
    out, data = fp32
    arts = _by_format(data, "fp32")
    assert set(arts) == {"onnx", "executorch", "tflite", "coreml", "tensorrt"}
    for fmt, a in arts.items():
        assert a["status"] == "ok", (fmt, a.get("error"), a.get("parity"))
        assert a["parity"]["passed"], (fmt, a["parity"])
        assert (out / a["file"]).exists()
        assert a["sha256"] == sha256_path(out / a["file"])
        assert a["size_bytes"] > 0
        assert "torch" in a["tools"]
    for fmt in ("onnx", "executorch", "tflite", "tensorrt"):  # numerically compared on this host
        p = arts[fmt]["parity"]
        assert p["max_abs_diff"] < 1e-4 and p["cosine"] > 0.99999 and p["top1_agreement"] == 1.0, (fmt, p)
        assert p["samples"] == 4


def test_manifest_schema_and_reference(fp32):
    out, data = fp32
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["schema"] == "edgeprune.export-manifest" and on_disk["version"] == 1 and on_disk["complete"]
    assert on_disk["inputs"] == [{"shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert on_disk["model"]["spec"].endswith(":build") and on_disk["model"]["params"] > 0
    (name,) = {a["reference"] for a in on_disk["artifacts"]}
    assert name.startswith("reference_fp32_") and [p.name for p in out.glob("reference_*.npz")] == [name]
    ref = np.load(out / name)
    assert ref["in_0_0"].shape == (1, 3, 32, 32) and ref["out_0_0"].shape == (1, 4)
    assert on_disk["references"][name]["sha256"] == sha256_path(out / name)


def test_executorch_records_delegation(fp32):
    _, data = fp32
    d = _by_format(data, "fp32")["executorch"]["details"]["delegation"]
    assert d["delegated_nodes"] >= 3 and d["delegated_ops"].get("convolution") == 1
    assert set(d) >= {"delegated_subgraphs", "non_delegated_nodes", "non_delegated_ops"}


def test_coreml_checked_structurally_on_linux(fp32):
    out, data = fp32
    a = _by_format(data, "fp32")["coreml"]
    assert (out / a["file"]).is_dir()  # an .mlpackage is a directory
    s = a["details"]["structure"]
    assert s["inputs"][0]["shape"] == [1, 3, 32, 32] and s["outputs"][0]["shape"] == [1, 4]
    assert "conv" in s["ops"]
    import sys

    if sys.platform != "darwin":
        assert a["parity"]["method"].startswith("structural") and a["parity"]["problems"] == []


def test_tensorrt_ready_onnx_and_trtexec_command(fp32):
    out, data = fp32
    a = _by_format(data, "fp32")["tensorrt"]
    model = onnx.load(str(out / a["file"]))
    onnx.checker.check_model(model, full_check=True)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert opset == 17
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 32]
    from edgeprune.exporters.tensorrt import TENSORRT_ONNX_OPS

    assert all(n.op_type in TENSORRT_ONNX_OPS for n in model.graph.node)
    sh = out / a["file"].replace(".onnx", ".trtexec.sh")
    cmd = sh.read_text().splitlines()[-1]
    args = shlex.split(cmd.split("&&", 1)[1])
    assert args[0] == "trtexec" and f"--onnx={a['file']}" in args
    assert "--saveEngine=model_tensorrt_fp32.engine" in args and "--shapes=input:1x3x32x32" in args
    assert "--fp16" not in args and "--int8" not in args


def test_int8_every_format_with_real_calibration(int8):
    out, data = int8
    arts = _by_format(data, "int8")
    assert data["calibration"] == {"spec": "fashion-mnist", "batches": 4}
    (ref,) = data["references"].values()
    assert "held out" in ref["source"] and ref["samples"] == 16
    for fmt, a in arts.items():
        assert a["status"] == "ok", (fmt, a.get("error"), a.get("parity"))
        assert a["parity"]["passed"], (fmt, a["parity"])
    for fmt in ("onnx", "executorch", "tflite", "tensorrt"):
        p = arts[fmt]["parity"]
        assert 0 < p["max_abs_diff"] < 0.1 and p["cosine"] > 0.99, (fmt, p)  # quantized: close, not identical


def test_int8_tflite_has_int8_io_with_recorded_params(int8):
    _, data = int8
    io = _by_format(data, "int8")["tflite"]["details"]["io"]
    assert io["inputs"][0]["dtype"] == "int8" and io["inputs"][0]["scale"] > 0
    assert io["outputs"][0]["dtype"] == "int8" and io["outputs"][0]["scale"] > 0


def test_int8_onnx_is_qdq_and_tensorrt_symmetric(int8):
    out, data = int8
    arts = _by_format(data, "int8")
    ops = arts["onnx"]["details"]["ops"]
    assert ops.get("QuantizeLinear", 0) >= 1 and ops.get("DequantizeLinear", 0) >= 2
    trt = onnx.load(str(out / arts["tensorrt"]["file"]))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in trt.graph.initializer}
    zps = [inits[n.input[2]] for n in trt.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits]
    assert zps and all(np.all(z == 0) for z in zps)  # TensorRT needs zero-point 0
    assert "--int8" in arts["tensorrt"]["details"]["trtexec"]


def test_fp16_formats(fp16):
    out, data = fp16
    arts = _by_format(data, "fp16")
    assert arts["onnx"]["status"] == "skipped" and arts["executorch"]["status"] == "skipped"  # no fp16 there
    for fmt in ("tflite", "coreml", "tensorrt"):
        assert arts[fmt]["status"] == "ok" and arts[fmt]["parity"]["passed"], (fmt, arts[fmt])
    assert "DEQUANTIZE" in arts["tflite"]["details"]["ops"]  # fp16 weights dequantized at load
    assert "cast" in arts["coreml"]["details"]["structure"]["ops"]
    assert "--fp16" in arts["tensorrt"]["details"]["trtexec"]
    assert 0 < arts["tflite"]["parity"]["max_abs_diff"] < 1e-2


def test_merged_dir_verifies(fp32):
    out, _ = fp32
    report = verify_dir(out)
    assert report.passed, report.to_json()
    assert {r.format for r in report.rows} == {"onnx", "executorch", "tflite", "coreml", "tensorrt"}
