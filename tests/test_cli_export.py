"""`edgeprune export` through click's CliRunner: the happy path and every bad input as a one-line error."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from edgeprune.cli.main import cli

pytestmark = pytest.mark.slow


def run(*args):
    return CliRunner().invoke(cli, ["export", *map(str, args)])


def one_line_error(r, *needles):
    assert r.exit_code == 1, r.output
    err = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(err) == 1 and "Traceback" not in r.output, r.output
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory):
    """ONNX exports this; TensorRT's parser has no Det operator."""
    f = tmp_path_factory.mktemp("m") / "det.py"
    f.write_text(textwrap.dedent('''
        import torch

        class DetNet(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(4, 4)

            def forward(self, x):
                y = self.lin(x)
                return torch.linalg.det(y).unsqueeze(-1) + y.sum(-1, keepdim=True)

        def build():
            torch.manual_seed(0)
            return DetNet()
    '''))
    return f


def test_export_cli_happy_path(tiny_model_file, tmp_path):
    out = tmp_path / "o"
    r = run(f"{tiny_model_file}:build", "--input", "1x3x32x32", "--format", "onnx,tensorrt", "--out", out)
    assert r.exit_code == 0, r.output
    assert "TensorRT is not installed here" in r.output and "trtexec" in r.output
    man = json.loads((out / "manifest.json").read_text())
    assert [a["status"] for a in man["artifacts"]] == ["ok", "ok"]
    assert CliRunner().invoke(cli, ["verify", str(out)]).exit_code == 0


def test_one_format_fails_others_kept(mixed_model, tmp_path):
    out = tmp_path / "o"
    r = run(f"{mixed_model}:build", "--input", "1x4x4", "--format", "onnx,tensorrt", "--out", out)
    line = one_line_error(r, "tensorrt", "Det")
    assert "1 of 2" in line
    man = json.loads((out / "manifest.json").read_text())
    arts = {a["format"]: a for a in man["artifacts"]}
    assert arts["onnx"]["status"] == "ok" and (out / arts["onnx"]["file"]).exists()
    assert arts["tensorrt"]["status"] == "failed" and arts["tensorrt"]["operator"] == "Det"
    assert not list(out.glob("*tensorrt*"))  # no half-written artifact
    assert man["complete"] is True


@pytest.mark.parametrize("args, needles", [
    (["torchvision:no_such_net", "--input", "1x3x32x32"], ["no_such_net"]),
    (["nonexistent_file.py:build", "--input", "1x3x32x32"], ["nonexistent_file.py"]),
    (["{tiny}:build", "--input", "1x3xAx32"], ["bad input shape"]),
    (["{tiny}:build", "--input", "1x3x32x32", "--weights", "/nonexistent/w.pt"], ["weights file not found"]),
    (["{tiny}:build", "--input", "1x3x32x32", "--format", "onnx,pdf"], ["unknown export format 'pdf'"]),
    (["{tiny}:build", "--input", "1x3x32x32", "--precision", "int8"], ["int8 needs calibration data", "--calib"]),
    (["{tiny}:build", "--input", "1x3x32x32", "--precision", "int8", "--calib", "random"], ["--calib-random"]),
    (["{tiny}:build", "--input", "1x3x32x32", "--format", "onnx", "--precision", "fp16"], ["onnx", "no fp16"]),
    (["{tiny}:build", "--input", "1x3x32x32", "--precision", "int8", "--calib", "imagefolder:/nonexistent/imgs"],
     ["not found", "/nonexistent/imgs"]),
    (["{tiny}:build", "--input", "1x3x7x7x7"], ["fails on inputs"]),
])
def test_bad_inputs_are_one_line_errors(args, needles, tiny_model_file, tmp_path):
    args = [a.replace("{tiny}", str(tiny_model_file)) for a in args]
    r = run(*args, "--out", tmp_path / "o")
    one_line_error(r, *needles)
    assert not (tmp_path / "o" / "manifest.json").exists() or json.loads((tmp_path / "o" / "manifest.json").read_text())["complete"] is False


def test_int8_with_random_calibration_flag(tiny_model_file, tmp_path):
    out = tmp_path / "o"
    r = run(f"{tiny_model_file}:build", "--input", "1x3x32x32", "--format", "onnx", "--precision", "int8",
            "--calib-random", "--calib-batches", "2", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    man = json.loads((out / "manifest.json").read_text())
    assert man["artifacts"][0]["parity"]["passed"] and man["calibration"]["spec"] == "random"


def test_out_is_a_file(tiny_model_file, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = run(f"{tiny_model_file}:build", "--input", "1x3x32x32", "--out", f)
    assert r.exit_code == 2 and "is a file" in r.output  # click's usage error
    from edgeprune.errors import EdgepruneError
    from edgeprune.export import export_model
    from edgeprune.models import parse_inputs

    with pytest.raises(EdgepruneError, match="not a directory"):
        export_model(object(), parse_inputs("1x3x32x32"), ["onnx"], "fp32", f)


def test_fallback_exporters_when_torch_export_fails(tmp_path):
    """Data-dependent control flow: torch.export fails; ONNX falls back to TorchScript, Core ML to jit.trace."""
    f = tmp_path / "branchy.py"
    f.write_text(textwrap.dedent('''
        import torch

        class Branchy(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(8, 4)

            def forward(self, x):
                if x.abs().sum() > 0:
                    x = x * 2
                return self.lin(x)

        def build():
            torch.manual_seed(0)
            return Branchy()
    '''))
    out = tmp_path / "o"
    r = run(f"{f}:build", "--input", "1x8", "--format", "onnx,executorch,coreml", "--out", out)
    one_line_error(r, "1 of 3", "executorch", "torch.export failed")
    arts = {a["format"]: a for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    assert arts["onnx"]["status"] == "ok" and arts["onnx"]["parity"]["passed"]
    assert any("TorchScript exporter" in n for n in arts["onnx"]["notes"])
    assert arts["coreml"]["status"] == "ok" and arts["coreml"]["details"]["converted_via"].startswith("torch.jit.trace")
    assert arts["executorch"]["status"] == "failed"
