"""`verify DIR` / verify_dir: hashes and parity re-checked from the stored reference, failures are clear."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edgeprune.cli.main import cli
from edgeprune.errors import VerificationError
from edgeprune.export import export_model_spec, verify_dir
from edgeprune.files import sha256_path
from edgeprune.verify.parity import TOLERANCES, compare_outputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model_file):
    out = tmp_path_factory.mktemp("exp") / "out"
    export_model_spec(f"{tiny_model_file}:build", input_text="1x3x32x32", formats="onnx,tflite", precision="fp32",
                      out_dir=out)
    return out


@pytest.fixture
def copy(exported, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(exported, d)
    return d


def test_verify_passes_without_the_model(exported):
    r = CliRunner().invoke(cli, ["verify", str(exported)])
    assert r.exit_code == 0, r.output
    assert "onnx" in r.output and "tflite" in r.output
    rep = verify_dir(exported)
    assert rep.passed and all(row.parity["passed"] for row in rep.rows)


def test_corrupted_artifact_fails_with_one_line(copy):
    f = copy / "model_onnx_fp32.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    r = CliRunner().invoke(cli, ["verify", str(copy)])
    assert r.exit_code == 1
    err = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(err) == 1 and "sha256" in err[0] and "onnx" in err[0] and "Traceback" not in r.output


def test_missing_artifact(copy):
    (copy / "model_tflite_fp32.tflite").unlink()
    rep = verify_dir(copy)
    assert not rep.passed and [r.status for r in rep.problems] == ["missing"]


def test_modified_model_with_updated_hash_fails_parity(copy):
    """Parity is really recomputed: change the weights, fix up the hash, verify must still fail."""
    f = copy / "model_onnx_fp32.onnx"
    m = onnx.load(str(f))
    biggest = max(m.graph.initializer, key=lambda t: np.prod(t.dims))
    arr = onnx.numpy_helper.to_array(biggest) * 1.5 + 0.1
    biggest.CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), biggest.name))
    onnx.save(m, str(f))
    man = json.loads((copy / "manifest.json").read_text())
    for a in man["artifacts"]:
        if a["file"] == f.name:
            a["sha256"] = sha256_path(f)
    (copy / "manifest.json").write_text(json.dumps(man))
    rep = verify_dir(copy)
    assert [(r.format, r.status) for r in rep.problems] == [("onnx", "parity_failed")]
    assert rep.problems[0].parity["rel_error"] > TOLERANCES["fp32"].max_rel_error


def test_corrupted_reference_and_manifest(copy):
    (ref,) = copy.glob("reference_*.npz")
    ref.write_bytes(b"garbage")
    rep = verify_dir(copy)
    assert rep.problems and all(r.status == "hash_mismatch" for r in rep.problems)
    (copy / "manifest.json").write_text("{not json")
    r = CliRunner().invoke(cli, ["verify", str(copy)])
    assert r.exit_code == 1 and "corrupted" in r.output and "Traceback" not in r.output


def test_second_export_into_same_dir_keeps_earlier_artifacts_verifiable(copy, tiny_model_file):
    """Another run with other parity inputs (real images) must not break the artifacts kept from the first."""
    man = json.loads((copy / "manifest.json").read_text())
    export_model_spec(man["model"]["spec"], input_text="1x3x32x32", formats="onnx", precision="fp32", out_dir=copy,
                      calib="fashion-mnist", calib_batches=1)
    man2 = json.loads((copy / "manifest.json").read_text())
    refs = {a["format"]: a["reference"] for a in man2["artifacts"]}
    assert set(refs) == {"onnx", "tflite"} and refs["onnx"] != refs["tflite"]
    assert sorted(p.name for p in copy.glob("reference_*.npz")) == sorted(set(refs.values()))
    assert verify_dir(copy).passed


def test_incomplete_export_never_verifies(copy):
    man = json.loads((copy / "manifest.json").read_text())
    man["complete"] = False
    (copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(VerificationError, match="did not finish"):
        verify_dir(copy)


def test_verify_missing_dir(tmp_path):
    r = CliRunner().invoke(cli, ["verify", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "not found" in r.output
    r = CliRunner().invoke(cli, ["verify", str(tmp_path)])
    assert r.exit_code == 1 and "manifest" in r.output


def test_compare_outputs_metrics():
    ref = [[np.array([[1.0, 2.0, 3.0]], np.float32)], [[np.array([[3.0, 1.0, 0.0]], np.float32)][0]]]
    same = compare_outputs(ref, ref, "fp32")
    assert same.passed and same.max_abs_diff == 0 and same.cosine == pytest.approx(1.0) and same.top1_agreement == 1.0
    flipped = [[np.array([[1.0, 3.1, 3.0]], np.float32)], [[np.array([[3.0, 1.0, 0.0]], np.float32)][0]]]
    r = compare_outputs(ref, flipped, "int8")
    assert r.top1_agreement == 0.5 and r.max_abs_diff == pytest.approx(1.1, rel=1e-5)
    assert not compare_outputs(ref, flipped, "fp32").passed
    bad_shape = [[np.zeros((1, 4), np.float32)], [np.zeros((1, 4), np.float32)]]
    assert not compare_outputs(ref, bad_shape, "fp32").passed
    tiny = [[np.array([[1e-9, 2e-9, 3e-9]], np.float32)]]
    zeros = compare_outputs(tiny, [[np.zeros((1, 3), np.float32)]], "int8")  # flushed to zero: no agreement
    assert zeros.cosine == 0.0 and zeros.rel_error == pytest.approx(1.0) and not zeros.passed
    assert zeros.ref_max_abs == pytest.approx(3e-9)
    nan = [[np.full((1, 3), np.nan, np.float32)], [np.zeros((1, 3), np.float32)]]
    assert not compare_outputs(ref, nan, "int8").passed


def test_all_zero_reference_is_flagged_as_vacuous_parity(tmp_path):
    """An untrained torchvision ViT's head is zero-initialized: any artifact returning zeros would pass."""
    import torch

    from edgeprune.exporters.pipeline import export_model
    from edgeprune.models.inputs import InputSpec

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4)).eval()
    torch.nn.init.zeros_(model[1].weight)
    torch.nn.init.zeros_(model[1].bias)
    data = export_model(model, (InputSpec((1, 3, 2, 2)),), ["onnx"], "fp32", tmp_path / "zero").data
    (ref,) = data["references"].values()
    art = data["artifacts"][0]
    assert ref.get("all_zero") is True and art["status"] == "ok"
    assert any(n.startswith("parity vacuous") for n in art["notes"])
    torch.nn.init.normal_(model[1].weight)  # a real output: no such note
    data = export_model(model, (InputSpec((1, 3, 2, 2)),), ["onnx"], "fp32", tmp_path / "real").data
    assert not any("vacuous" in n for n in data["artifacts"][0]["notes"])
    assert not any(r.get("all_zero") for r in data["references"].values())
