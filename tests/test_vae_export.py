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

