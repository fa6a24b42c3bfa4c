"""Redesign: student video shape == teacher decode shape for every family; model dir; bad inputs."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from edgeprune.errors import DataSpecError, EdgepruneError
from edgeprune.vae import zoo
from edgeprune.vae.adapters import LatentShapeError, UnsupportedVAEError, adapter_for, teacher_decode
from edgeprune.vae.redesign import redesign
from edgeprune.vae.student import count_params

FAMILIES = {
    "cogvideox_small": (4, [(1, 4, 2, 4, 4), (1, 4, 3, 6, 8)]),
    "hunyuanvideo_small": (4, [(1, 4, 2, 4, 4), (1, 4, 3, 6, 8)]),
    "ltxvideo_small": (8, [(1, 8, 2, 4, 4), (1, 8, 3, 6, 8)]),
    "wan_small": (4, [(1, 4, 2, 4, 4), (1, 4, 3, 6, 8)]),
    "kl2d_small": (4, [(1, 4, 1, 4, 4), (2, 4, 3, 6, 8)]),
}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_student_shape_matches_teacher(name):
    teacher = getattr(zoo, name)().eval()
    _, shapes = FAMILIES[name]
    for shape in shapes:
        r = redesign(teacher, shape, preset="small")
        z = torch.randn(shape)
        with torch.no_grad():
            want = teacher_decode(teacher, z).shape
            got = r.student(z).shape
        assert got == want, (name, shape, got, want)
        assert tuple(got) == r.output_shape
        # only 2-D ops: no Conv3d / attention / interpolation modules in the student
        kinds = {type(m).__name__ for m in r.student.modules()}
        assert not kinds & {"Conv3d", "MultiheadAttention", "Attention", "Upsample"}


def test_wan_teacher_decode_uses_frame_cache_loop():
    vae = zoo.wan_small().eval()
    z = torch.randn(1, 4, 3, 4, 4)
    with torch.no_grad():
        full = teacher_decode(vae, z)
    assert full.shape[2] == 9  # 1 + 4 * (3 - 1): the temporal upsampling ran


def test_cogvideox_teacher_decode_unpacks_cache():
    vae = zoo.cogvideox_small().eval()
    with torch.no_grad():
        out = teacher_decode(vae, torch.randn(1, 4, 3, 4, 4))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 3, 9, 32, 32)


def test_student_is_much_smaller_than_teacher():
    teacher = zoo.cogvideox_teacher().eval()
    r = redesign(teacher, (1, 16, 3, 4, 4), preset="medium")
    assert count_params(r.student) <= 0.3 * sum(p.numel() for p in teacher.decoder.parameters())


def test_model_dir_roundtrip(tmp_path):
    from edgeprune.models import load_model
    from edgeprune.vae import redesign_model

    r = redesign_model("edgeprune.vae.zoo:hunyuanvideo_small", (1, 4, 2, 4, 4), tmp_path / "s", preset="small")
    loaded = load_model(str(tmp_path / "s"))
    assert loaded.metadata["kind"] == "vae-student"
    assert loaded.inputs[0].shape == (1, 4, 2, 4, 4)
    z = torch.randn(1, 4, 2, 4, 4)
    with torch.no_grad():
        assert torch.equal(loaded.module(z), r.student(z))


def test_unknown_vae_class_is_a_clear_error():
    with pytest.raises(UnsupportedVAEError, match="AutoencoderKLWan") as e:
        adapter_for(torch.nn.Conv2d(3, 3, 1))
    assert "Conv2d" in str(e.value) and "adapter" in str(e.value)


def test_latent_shape_mismatch_is_a_clear_error():
    teacher = zoo.cogvideox_small().eval()
    with pytest.raises(LatentShapeError, match="4 channels|has 16 channels"):
        redesign(teacher, (1, 16, 3, 4, 4))
    with pytest.raises(LatentShapeError, match="B x C x T x H x W"):
        redesign(teacher, (1, 4, 4, 4))


def test_empty_data_folder_is_a_clear_error(tmp_path):
    from edgeprune.vae.clips import load_sources

    with pytest.raises(DataSpecError, match="has no images"):
        load_sources(f"images:{tmp_path}")
    with pytest.raises(DataSpecError, match="unknown data spec"):
        load_sources("photos")


def test_clip_split_is_by_source():
    from edgeprune.vae.clips import load_sources, split_sources

    train, held = split_sources(load_sources("skimage"))
    assert held and train
    assert not {s.name for s in train} & {s.name for s in held}


def test_cli_errors_are_one_line(tmp_path):
    from edgeprune.cli.main import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["vae", "redesign", "torchvision:resnet18", "--latent", "1x4x2x4x4", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1
    assert "cannot redesign a ResNet" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["vae", "redesign", "edgeprune.vae.zoo:wan_small", "--latent", "1x16x2x4x4", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "has 16 channels" in res.output
    res = runner.invoke(cli, ["vae", "redesign", "edgeprune.vae.zoo:wan_small", "--latent", "1x4x2x4x4", "--out", str(tmp_path / "ok")])
    assert res.exit_code == 0, res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(cli, ["vae", "distill", str(tmp_path / "ok"), "--teacher", "edgeprune.vae.zoo:wan_small",
                              "--data", f"images:{tmp_path / 'empty'}", "--steps", "2"])
    assert res.exit_code == 1 and "has no images" in res.output and "Traceback" not in res.output
    assert isinstance(DataSpecError("x"), EdgepruneError)


def test_table_options_are_checked(tmp_path):
    from edgeprune.errors import TableError

    teacher = zoo.wan_small().eval()
    with pytest.raises(EdgepruneError, match="--table needs --target-latency"):
        redesign(teacher, (1, 4, 2, 4, 4), table=str(tmp_path / "t.json"))
    with pytest.raises(TableError, match="latency table not found"):
        redesign(teacher, (1, 4, 2, 4, 4), table=str(tmp_path / "t.json"), target_latency_ms=5.0)
