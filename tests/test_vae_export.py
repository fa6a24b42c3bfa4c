"""The student exports to ExecuTorch (XNNPACK, fully delegated) and runs there with parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune.vae import zoo
from edgeprune.vae.redesign import redesign

pytest.importorskip("executorch")


def test_student_executorch_fully_delegated_with_parity(tmp_path):
    from edgeprune.exporters.base import ExportOptions, get_exporter
    from edgeprune.runtimes.base import get_runtime

    torch.set_num_threads(1)
    torch.manual_seed(0)
    r = redesign(zoo.cogvideox_small().eval(), (1, 4, 3, 4, 4), preset="small")
    z = torch.randn(1, 4, 3, 4, 4)
    art = get_exporter("executorch").export(r.student.eval(), (z,), tmp_path / "s.pte", ExportOptions())
    d = art.details["delegation"]
    assert d["delegated_nodes"] > 0
    assert not any("conv" in op for op in d["non_delegated_ops"]), d["non_delegated_ops"]
    assert d["non_delegated_nodes"] == 0, d["non_delegated_ops"]
    assert d["delegated_subgraphs"] == 1
    sess = get_runtime("executorch").load(art.path, threads=1)
    (out,) = sess.run([z.numpy()])
    with torch.no_grad():
        ref = r.student(z).numpy()
    out = np.asarray(out)
    assert out.shape == ref.shape == (1, 3, 9, 32, 32)
    assert np.abs(out - ref).max() < 1e-4



def test_redesigned_dir_is_a_normal_model_for_export_and_verify(tmp_path):
    """`edgeprune vae redesign` -> `edgeprune export DIR` -> `edgeprune verify OUT`, through the CLI."""
    import json

    from click.testing import CliRunner

    from edgeprune.cli.main import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["vae", "redesign", "edgeprune.vae.zoo:ltxvideo_small", "--latent", "1x8x2x4x4",
                              "--preset", "small", "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert "video 1x3x5x16x16" in res.output  # this small LTX: 1 + 4 * (2 - 1) frames, 4x spatial
    res = runner.invoke(cli, ["export", str(tmp_path / "s"), "--format", "onnx,executorch", "--threads", "1",
                              "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {a["format"]: a["status"] for a in manifest["artifacts"]} == {"onnx": "ok", "executorch": "ok"}
    assert all(a["parity"]["passed"] for a in manifest["artifacts"])
    res = runner.invoke(cli, ["verify", str(tmp_path / "out"), "--threads", "1"])
    assert res.exit_code == 0, res.output
