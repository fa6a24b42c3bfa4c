"""Host runtimes used for parity and latency: ExecuTorch and LiteRT sessions on real artifacts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeprune.exporters.base import ExportOptions, Precision, get_exporter
from edgeprune.runtimes import get_runtime

pytestmark = pytest.mark.slow


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    d = tmp_path_factory.mktemp("rt")
    m = Net().eval()
    x = torch.randn(1, 1, 28, 28)
    calib = tuple((torch.randn(1, 1, 28, 28),) for _ in range(4))
    out = {}
    for fmt, prec, suffix in (("executorch", Precision.FP32, ".pte"), ("tflite", Precision.FP32, ".tflite"),
                              ("tflite", Precision.INT8, ".tflite")):
        out[(fmt, prec.value)] = get_exporter(fmt).export(m, (x,), d / f"m_{fmt}_{prec.value}{suffix}",
                                                          ExportOptions(precision=prec, calibration=calib))
    return m, x, out


def test_executorch_session(artifacts):
    m, x, arts = artifacts
    s = get_runtime("executorch").load(arts[("executorch", "fp32")].path, threads=2)
    assert s.input_specs == [((1, 1, 28, 28), "float32")]
    (y,) = s.run([x.numpy()])
    np.testing.assert_allclose(y, m(x).detach().numpy(), atol=1e-4)


def test_litert_session_fp32_and_int8_io(artifacts):
    m, x, arts = artifacts
    ref = m(x).detach().numpy()
    s = get_runtime("litert").load(arts[("tflite", "fp32")].path, threads=2)
    np.testing.assert_allclose(s.run([x.numpy()])[0], ref, atol=1e-4)
    q = get_runtime("litert").load(arts[("tflite", "int8")].path, threads=2)
    assert q.input_specs == [((1, 1, 28, 28), "float32")]  # callers feed float; the session quantizes
    assert q.quantization()["inputs"][0]["dtype"] == "int8"
    y = q.run([x.numpy()])[0]
    assert y.dtype == np.float32 and y.shape == ref.shape
    assert np.corrcoef(y.ravel(), ref.ravel())[0, 1] > 0.98
    y2 = q.run([x.numpy()])[0]  # buffers are reused between calls: results must not alias
    np.testing.assert_array_equal(y, y2)


def test_corrupted_artifact_is_a_user_error(tmp_path):
    from edgeprune.errors import EdgepruneError

    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"not a program")
    with pytest.raises(EdgepruneError, match="corrupted"):
        get_runtime("executorch").load(bad)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgepruneError, match="corrupted"):
        get_runtime("litert").load(bad)
