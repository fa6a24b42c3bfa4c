"""Swin V2 (windowed attention, continuous position bias) through the formats where torchvision's Swin
models failed: Core ML (`alias`, `zero` ops), ExecuTorch int8 (zero pads, a quantized MLP on a constant)
and LiteRT int8 (an observer on an int64 constant). A tiny real SwinTransformer, not a stand-in."""

from __future__ import annotations

import pytest
import torch

from edgeprune.exporters.graph_passes import attr_value, drop_noop_pads, float_only
from edgeprune.exporters.pipeline import export_model
from edgeprune.models.inputs import parse_inputs

SHAPE = (1, 3, 64, 64)


def tiny_swin_v2():
    from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformer, SwinTransformerBlockV2

    torch.manual_seed(0)
    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=[4, 4],
                           num_classes=10, block=SwinTransformerBlockV2, downsample_layer=PatchMergingV2).eval()


def _calibration(n: int = 4) -> list:
    return [torch.randn(*SHAPE, generator=torch.Generator().manual_seed(i)) for i in range(n)]


def test_noop_pads_dropped_real_pads_kept():
    class Pads(torch.nn.Module):
        def forward(self, x):
            y = torch.nn.functional.pad(x, (0, 0, 0, 0)) * 2
            return torch.nn.functional.pad(y, (1, 0, 0, 2))

    x = torch.randn(1, 2, 3, 4)
    gm = torch.export.export(Pads(), (x,), strict=False).module()
    before = [str(n.target) for n in gm.graph.nodes if "pad" in str(n.target)]
    assert drop_noop_pads(gm) == 1
    after = [str(n.target) for n in gm.graph.nodes if "pad" in str(n.target)]
    assert len(before) == 2 and len(after) == 1
    assert torch.equal(gm(x), Pads()(x))


def test_float_only_leaves_integer_constants_unobserved():
    from litert_torch.quantize import pt2e_quantizer
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    model = tiny_swin_v2()
    gm = torch.export.export(model, (torch.randn(*SHAPE),), strict=False).module()
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))  # it observes int64 constants
    prepared = prepare_pt2e(gm, float_only(quantizer))
    observed = [n.args[0] for n in prepared.graph.nodes if n.op == "call_module" and "activation_post_process" in n.target]
    assert observed  # the float activations are still observed
    for src in observed:
        val = src.meta.get("val") if src.op != "get_attr" else attr_value(prepared, src.target)
        assert val is None or val.dtype.is_floating_point, src
    for batch in _calibration(2):
        prepared(batch)  # the histogram observers run: no int64 among them


@pytest.mark.slow
def test_swin_v2_exports_where_torchvision_swin_failed(tmp_path):
    specs = parse_inputs("1x3x64x64")
    fp32 = export_model(tiny_swin_v2(), specs, "coreml", "fp32", tmp_path / "fp32")
    int8 = export_model(tiny_swin_v2(), specs, "executorch,tflite", "int8", tmp_path / "int8",
                        calibration=_calibration())
    arts = {(a["format"], a["precision"]): a for a in fp32.artifacts + int8.artifacts}
    assert set(arts) == {("coreml", "fp32"), ("executorch", "int8"), ("tflite", "int8")}
    for key, a in arts.items():
        assert a["status"] == "ok", (key, a.get("error"))
        assert a["parity"]["passed"], (key, a["parity"])
    for key in (("executorch", "int8"), ("tflite", "int8")):  # numerically checked on this host's runtimes
        assert arts[key]["parity"]["cosine"] > 0.99, arts[key]["parity"]


def test_int8_pad_of_a_dequantized_tensor_stays_off_xnnpack(tmp_path):
    """ExecuTorch 1.5 delegates such a pad as float with an int8 input, and the program fails to load
    (swin_v2_t at 224x224): edgeprune keeps it on the portable kernels, and the program runs."""
    class ConvPadConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3)

        def forward(self, x):
            return self.b(torch.nn.functional.pad(torch.relu(self.a(x)), (1, 2, 0, 1)))

    torch.manual_seed(0)
    calib = [torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    m = export_model(ConvPadConv().eval(), parse_inputs("1x3x16x16"), "executorch", "int8", tmp_path, calibration=calib)
    (a,) = m.artifacts
    assert a["status"] == "ok" and a["parity"]["passed"], (a.get("error"), a["parity"])
    delegation = a["details"]["delegation"]
    assert "constant_pad_nd" in delegation["non_delegated_ops"], delegation
    assert delegation["delegated_ops"].get("convolution") == 2, delegation
