"""Model specs, input specs, weights and the edgeprune model directory."""

from __future__ import annotations

import json

import pytest
import torch

from edgeprune.errors import InputSpecError, ModelSpecError
from edgeprune.models import (
    InputSpec, example_inputs, load_model, load_model_dir, parse_inputs, save_model_dir,
)


@pytest.mark.parametrize("text,expected", [
    ("1x3x224x224", (InputSpec((1, 3, 224, 224)),)),
    ("1x3x32x32,1x10:int64", (InputSpec((1, 3, 32, 32)), InputSpec((1, 10), "int64"))),
    (" 2x8 : fp16 ".replace(" ", ""), (InputSpec((2, 8), "float16"),)),
])
def test_parse_inputs(text, expected):
    assert parse_inputs(text) == expected


@pytest.mark.parametrize("bad", ["", "1x3xa", "1x0x3", "1x3:complex", "x3", "1,,2"])
def test_parse_inputs_rejects(bad):
    with pytest.raises(InputSpecError):
        parse_inputs(bad)


def test_example_inputs_deterministic():
    specs = parse_inputs("1x3x8x8,1x4:int64")
    a, b = example_inputs(specs, seed=3), example_inputs(specs, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[1].dtype == torch.int64


def test_load_file_factory(tiny_model_file):
    loaded = load_model(f"{tiny_model_file}:build")
    out = loaded.module(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 4)
    assert not loaded.module.training


def test_load_torchvision():
    m = load_model("torchvision:mobilenet_v3_small").module
    assert sum(p.numel() for p in m.parameters()) > 1e6


def test_load_package_module_factory():
    m = load_model("torch.nn:Identity").module
    assert isinstance(m, torch.nn.Identity)


@pytest.mark.parametrize("suffix,msg", [
    (":needs_args", "needs arguments"),
    (":not_a_module", "not a torch.nn.Module"),
    (":explodes", "raised ValueError: boom"),
    (":missing", "has no attribute"),
])
def test_bad_factories(tiny_model_file, suffix, msg):
    with pytest.raises(ModelSpecError, match=msg):
        load_model(f"{tiny_model_file}{suffix}")


@pytest.mark.parametrize("spec,msg", [
    ("torchvision:resnet_nope", "unknown torchvision model"),
    ("nofile.py:build", "file not found"),
    ("no_such_pkg_xyz.mod:build", "cannot import module"),
    ("justaword", "cannot resolve model spec"),
    ("missing.pt2", "not found"),
])
def test_bad_specs(spec, msg):
    with pytest.raises(ModelSpecError, match=msg):
        load_model(spec)


def test_weights_roundtrip_and_mismatch(tiny_model_file, tmp_path):
    m = load_model(f"{tiny_model_file}:build").module
    with torch.no_grad():
        m.fc.bias.fill_(1.5)
    ckpt = tmp_path / "w.pt"
    torch.save(m.state_dict(), ckpt)
    m2 = load_model(f"{tiny_model_file}:build", weights=str(ckpt)).module
    assert torch.allclose(m2.fc.bias, torch.full((4,), 1.5))
    with pytest.raises(ModelSpecError, match="do not match"):
        load_model("torchvision:mobilenet_v3_small", weights=str(ckpt))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelSpecError, match="cannot read weights"):
        load_model(f"{tiny_model_file}:build", weights=str(bad))


def test_pt2_spec(tiny_model_file, tmp_path):
    m = load_model(f"{tiny_model_file}:build").module
    x = torch.randn(1, 3, 8, 8)
    ep = torch.export.export(m, (x,))
    torch.export.save(ep, str(tmp_path / "m.pt2"))
    m2 = load_model(str(tmp_path / "m.pt2")).module
    assert torch.allclose(m(x), m2(x), atol=1e-6)


def test_model_dir_roundtrip(tiny_model_file, tmp_path):
    spec = f"{tiny_model_file}:build"
    m = load_model(spec).module
    with torch.no_grad():
        m.conv.weight.mul_(2)
    inputs = parse_inputs("1x3x8x8")
    out = save_model_dir(tmp_path / "saved", m, kind="module", recipe={"base": spec}, inputs=inputs,
                         extra={"note.json": {"a": 1}})
    assert json.loads((out / "model.json").read_text())["kind"] == "module"
    assert (out / "model.pt2").is_file() and (out / "note.json").is_file()
    loaded = load_model(str(out))
    assert loaded.inputs == inputs
    x = torch.randn(1, 3, 8, 8)
    assert torch.allclose(loaded.module(x), m(x), atol=1e-6)
    assert not list(tmp_path.glob(".saved.partial*"))


def test_model_dir_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSpecError, match="not an edgeprune model"):
        load_model(str(tmp_path / "empty"))
    d = tmp_path / "corrupt"
    d.mkdir()
    (d / "model.json").write_text("{not json")
    with pytest.raises(Exception, match="corrupted"):
        load_model_dir(d)
    (d / "model.json").write_text(json.dumps({"schema": "edgeprune.model", "version": 1, "kind": "alien"}))
    with pytest.raises(ModelSpecError, match="unknown model kind"):
        load_model_dir(d)


def test_failed_save_leaves_nothing(tmp_path, tiny_model_file):
    m = load_model(f"{tiny_model_file}:build").module

    def boom(tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_model_dir(tmp_path / "x", m, kind="module", recipe={"base": "a:b"}, inputs=parse_inputs("1x3x8x8"),
                       on_complete=boom, write_pt2=False)
    assert list(tmp_path.iterdir()) == []
