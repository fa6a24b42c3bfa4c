"""ViTs: the self-attention rewrite, the kernel graph of a ViT (heads, MLP, embedding dim through the class
token and position embedding), whole-head removal, and pruning ViTs end to end (synthetic tables: exact
checks; one attention micro-model on ONNX Runtime; fine-tuning on Fashion-MNIST)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from edgeprune.cli.main import cli
from edgeprune.latency import LatencyModel
from edgeprune.latency.kernels import extract_kernels
from edgeprune.models.attention import HeadAttention, PrunableAttention, attention_modules, prunable_attention
from edgeprune.models.inputs import InputSpec
from edgeprune.pruning import prune

sys.path.insert(0, str(Path(__file__).parent))
from test_latency import synthetic_table  # noqa: E402
from test_pruning import prune_checked  # noqa: E402

torchvision = pytest.importorskip("torchvision")
VIT = (InputSpec((1, 3, 32, 32)),)


def tiny_vit(patch: int = 8, dim: int = 64):
    torch.manual_seed(0)
    m = torchvision.models.VisionTransformer(image_size=32, patch_size=patch, num_layers=2, num_heads=4,
                                             hidden_dim=dim, mlp_dim=2 * dim, num_classes=10).eval()
    nn.init.normal_(m.heads.head.weight, std=0.5)  # torchvision zero-initializes it: outputs (and parity) would be 0
    return m


class TokenViT(nn.Module):
    """A hand-written ViT: sequence-first attention, class token, learned position embedding, flatten(2)."""

    def __init__(self, dim=48, heads=3, depth=2):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 8, 8)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, 17, dim) * 0.02)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2 * depth))
        self.attn = nn.ModuleList(nn.MultiheadAttention(dim, heads) for _ in range(depth))
        self.mlp = nn.ModuleList(nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
                                 for _ in range(depth))
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for i, (attn, mlp) in enumerate(zip(self.attn, self.mlp)):
            h = self.norms[2 * i](x).transpose(0, 1)
            x = x + attn(h, h, h, need_weights=False)[0].transpose(0, 1)
            x = x + mlp(self.norms[2 * i + 1](x))
        return self.head(x[:, 0])


def _vit(kind):
    if kind == "torchvision":
        return tiny_vit()
    torch.manual_seed(0)
    return TokenViT().eval()


def _table(model, formula=None, path=None):
    return synthetic_table(extract_kernels(prunable_attention(model, VIT)[0], VIT), path, formula=formula)


def _heavy_attention(k, ci, co):
    """Attention and the MLP cost the most: the solver has reasons to drop heads."""
    if k.dims == 2:
        return 1e-4 * ci * co
    return (3e-3 if k.op == "attention" else 2e-4) * ci


# ---------------------------------------------------------------- the rewrite
@pytest.mark.parametrize("batch_first", [True, False])
def test_rewritten_attention_computes_what_multihead_attention_does(batch_first):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4, batch_first=batch_first).eval()
    x = torch.randn(2, 7, 32) if batch_first else torch.randn(7, 2, 32)
    new = PrunableAttention.from_mha(mha).eval()
    with torch.no_grad():
        assert torch.allclose(new(x, x, x, need_weights=False)[0], mha(x, x, x, need_weights=False)[0], atol=1e-5)
    assert new.qkv.out_features == 96 and new.num_heads == 4 and new.core.head_dim == 8
    with pytest.raises(ValueError, match="self-attention only"):
        new(x, x + 1, x + 1)


class CrossAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x):
        return self.mha(x, x.flip(1), x.flip(1))[0]


class SelfThenCross(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.cross = CrossAttention()

    def forward(self, x):
        return self.cross(x + self.self_attn(x, x, x)[0])


def test_cross_attention_keeps_the_stock_module():
    model = CrossAttention().eval()
    same, names = prunable_attention(model, (InputSpec((1, 5, 16)),))
    assert same is model and names == [] and isinstance(model.mha, nn.MultiheadAttention)
    mixed, names = prunable_attention(SelfThenCross().eval(), (InputSpec((1, 5, 16)),))
    assert names == ["self_attn"] and isinstance(mixed.self_attn, PrunableAttention)
    assert isinstance(mixed.cross.mha, nn.MultiheadAttention)


def test_removing_heads_equals_zeroing_their_qkv_rows():
    """What the knapsack's masks and the regularized gates do during fine-tuning is what removal ships."""
    torch.manual_seed(0)
    attn = PrunableAttention.from_mha(nn.MultiheadAttention(32, 4, batch_first=True)).eval()
    x = torch.randn(2, 6, 32)
    masked = PrunableAttention.from_mha(nn.MultiheadAttention(32, 4, batch_first=True))
    masked.load_state_dict(attn.state_dict())
    rows = torch.as_tensor(attn.head_rows([1, 3]))
    with torch.no_grad():
        masked.qkv.weight[rows] = 0
        masked.qkv.bias[rows] = 0
        want = masked(x)[0]
        attn.remove_heads([1, 3])
        got = attn(x)[0]
    assert torch.allclose(got, want, atol=1e-5)
    assert attn.num_heads == 2 and attn.qkv.out_features == 48 and attn.proj.in_features == 16
    with pytest.raises(ValueError, match="at least one head"):
        attn.remove_heads([0, 1])


# ---------------------------------------------------------------- the kernel graph
@pytest.mark.parametrize("kind", ["torchvision", "custom"])
def test_vit_kernel_graph_prices_heads_and_follows_the_embedding_dim(kind):
    model, names = prunable_attention(_vit(kind), VIT)
    assert len(names) == 2
    g = extract_kernels(model, VIT)
    free = g.prunable()
    sym = {n: i for i, n in enumerate(g.symbols)}
    qkv = [n for n in free if n.endswith(".qkv")]
    assert len(qkv) == 2
    cores = [k for k in g.kernels if k.op == "attention"]
    assert len(cores) == 2
    for k in cores:  # the core's width is a third of its qkv layer's
        q = k.name.rsplit(".", 1)[0] + ".qkv"
        assert k.cout_expr.terms == ((sym[q], pytest.approx(1 / 3)),) and k.cout == free[q] // 3
    embed = "conv_proj" if kind == "torchvision" else "patch"
    residual = {g.group_of[sym[n]] for n in free if n == embed or n.endswith(".proj") or n.endswith((".mlp.3", ".2"))}
    assert len(residual) == 1  # patch embedding, attention outputs and MLP outputs: one residual width
    assert not any(n.startswith(("heads", "head")) for n in free)  # the classifier feeds the output
    # every norm and the class-token concat follow that width (C), never the token count
    for k in g.kernels:
        if k.op in ("layernorm", "cat"):
            assert all(s[-1] == "C" for s in k.spec["shapes"]), k.describe()


def test_the_stock_torchvision_vit_writes_its_width_into_a_reshape():
    """Without the rewrite, `x.reshape(n, self.hidden_dim, ...)` bakes the width in: it must stay fixed."""
    g = extract_kernels(tiny_vit(), VIT)
    # the stock attention is opaque (fixed), and so is the residual stream its output is added to
    assert sorted(g.prunable()) == ["encoder.layers.encoder_layer_0.mlp.0", "encoder.layers.encoder_layer_1.mlp.0"]
    assert "conv_proj" in extract_kernels(prunable_attention(tiny_vit(), VIT)[0], VIT).prunable()


class Literal(nn.Module):
    def __init__(self, literal):
        super().__init__()
        self.literal = literal
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.conv(x), 4)
        return self.fc(x.view(-1, 16 * 4 * 4) if self.literal else x.view(x.size(0), -1))


def test_a_width_written_as_a_constant_is_not_prunable():
    specs = (InputSpec((1, 3, 8, 8)),)
    assert "conv" not in extract_kernels(Literal(True).eval(), specs).prunable()
    assert "conv" in extract_kernels(Literal(False).eval(), specs).prunable()  # x.size(0) only reads the shape


def test_tokens_as_many_as_channels_are_told_apart():
    """64 patches of 64 channels: the permute's arguments, not the shapes, say where the channels went."""
    model = prunable_attention(tiny_vit(patch=4, dim=64), VIT)[0]
    g = extract_kernels(model, VIT)
    norms = [k for k in g.kernels if k.op == "layernorm"]
    assert norms and all(k.spec["shapes"] == [[1, 65, "C"]] for k in norms)


# ---------------------------------------------------------------- pruning
@pytest.mark.parametrize("kind", ["torchvision", "custom"])
def test_pruned_vit_drops_whole_heads_and_matches_its_prediction(kind):
    model = _vit(kind)
    table = _table(model, _heavy_attention)
    r = prune_checked(model, VIT, table, speedup=1.6)  # the input model keeps its stock attention
    assert r.predicted_ms <= r.budget_ms + 1e-12 and len(r.attention) == 2
    attn = attention_modules(r.module)
    heads = {n: a.num_heads for n, a in attn.items()}
    assert any(h < 4 if kind == "torchvision" else h < 3 for h in heads.values()), heads
    for a in attn.values():
        assert a.qkv.out_features == 3 * a.num_heads * a.core.head_dim == 3 * a.proj.in_features
    assert LatencyModel.build(r.module, VIT, table).predict() == pytest.approx(r.predicted_ms, rel=1e-9)
    head_groups = [g for g in r.groups if g.get("head_dim")]
    assert head_groups and all(c % (3 * g["head_dim"]) == 0 for g in head_groups for c in g["candidates"])


def test_pruning_the_embedding_dim_shrinks_the_class_token_and_position_embedding():
    model = tiny_vit()
    table = _table(model, lambda k, ci, co: 1e-4 * ci * co if k.dims == 2 else 2e-4 * ci)
    r = prune(model, VIT, table, speedup=1.4, verify=False, ignore=["*.mlp.0", "*.self_attention.qkv"])
    m = r.module
    width = m.conv_proj.out_channels
    assert width < 64
    assert m.class_token.shape[-1] == m.encoder.pos_embedding.shape[-1] == width == m.heads.head.in_features
    assert all(ln.normalized_shape == (width,) for ln in m.modules() if isinstance(ln, nn.LayerNorm))
    assert all(a.num_heads == 4 for a in attention_modules(m).values())  # ignored: heads stay
    assert m(torch.randn(VIT[0].shape)).shape == (1, 10)
    assert LatencyModel.build(m, VIT, table).predict() == pytest.approx(r.predicted_ms, rel=1e-9)


def test_head_importance_and_removal_go_by_whole_heads():
    from edgeprune.pruning.api import _Problem
    from edgeprune.pruning.gates import ChannelGates
    from edgeprune.pruning.importance import removed_channels, removed_heads, score_groups

    model = prunable_attention(tiny_vit(), VIT)[0]
    attn = model.encoder.layers[0].self_attention
    with torch.no_grad():  # head 2 of the first layer carries almost nothing
        attn.qkv.weight[torch.as_tensor(attn.head_rows([2]))] *= 1e-3
        attn.proj.weight[:, 32:48] *= 1e-3
    table = _table(model, _heavy_attention)
    lm = LatencyModel.build(model, VIT, table)
    prob = _Problem(model, VIT, lm, table, (), 0.1)
    score_groups(model, prob.dg, prob.groups, "magnitude")
    g = next(g for g in prob.groups if g.root == "encoder.layers.encoder_layer_0.self_attention.qkv")
    assert g.head_dim == 16 and g.counts and all(c % 48 == 0 for c in g.counts)
    assert removed_heads(g, 144) == [2]
    drop, heads = removed_channels(g, 96), removed_heads(g, 96)
    assert len(drop) == 96 and len(heads) == 2 and 2 in heads and set(g.head_of_channel()[drop]) == set(heads)
    gates = ChannelGates(model, prob.dg, prob.groups, soft=True)
    assert gates.logits[g.root].shape == (4,)  # one gate per head, spread over its q/k/v rows
    with torch.no_grad():
        gates.logits[g.root][:] = torch.tensor([3.0, -1.0, 0.5, 2.0])
    spread = gates.gate(g.root).detach().numpy()
    for h in range(4):
        assert np.ptp(spread[g.head_of_channel() == h]) == 0
    gates.remove()


def test_calibration_variants_remove_whole_heads():
    from edgeprune.latency.variants import prune_variant

    model = prunable_attention(tiny_vit(), VIT)[0]
    prunable = list(extract_kernels(model, VIT).prunable())
    qkv = "encoder.layers.encoder_layer_1.self_attention.qkv"
    variant = prune_variant(model, VIT, {qkv: 0.5, "encoder.layers.encoder_layer_1.mlp.0": 0.5}, prunable)
    a = variant.encoder.layers[1].self_attention
    assert a.num_heads == 2 and a.qkv.out_features == 96 and variant.encoder.layers[1].mlp[0].out_features == 64
    assert variant(torch.randn(VIT[0].shape)).shape == (1, 10)


def test_attention_micro_model_runs_on_onnxruntime_at_whole_heads():
    from edgeprune.latency.measure import measure_module
    from edgeprune.latency.micro import build_micro

    model = prunable_attention(tiny_vit(), VIT)[0]
    k = next(k for k in extract_kernels(model, VIT).kernels if k.op == "attention")
    micro, specs = build_micro(k.spec, 40, 40)  # 40 is not whole heads of 16: built at 2 heads (32)
    assert isinstance(micro, HeadAttention) and micro.num_heads == 2 and specs[0].shape == (1, 17, 96)
    res = measure_module(micro, specs, device="host", runtime="onnxruntime", precision="fp32")
    assert res.timing.min_ms > 0


# ---------------------------------------------------------------- model directory, export, fine-tuning
def test_cli_prune_of_a_vit_saves_loads_and_exports_with_parity(tmp_path):
    f = tmp_path / "vit.py"
    f.write_text(f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                 "from test_attention import tiny_vit\n\ndef build():\n    return tiny_vit()\n")
    table = _table(tiny_vit(), _heavy_attention, tmp_path / "table.json")
    table.save()
    out = tmp_path / "pruned"
    res = CliRunner().invoke(cli, ["prune", f"{f}:build", "--input", "1x3x32x32", "--table", str(tmp_path / "table.json"),
                                   "--speedup", "1.6", "--out", str(out), "--no-verify", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["layer"]: r for r in json.loads((out / "plan.json").read_text())["layers"]}
    qkv = rows["encoder.layers.encoder_layer_0.self_attention.qkv"]
    assert qkv["heads"] == f"{qkv['kept'] // 48} of 4" and f"({qkv['heads']} heads)" in (out / "report.md").read_text()
    recipe = json.loads((out / "model.json").read_text())["recipe"]
    assert len(recipe["attention"]) == 2 and any(h[1] == "heads" for h in recipe["history"])
    from edgeprune.models import load_model

    loaded = load_model(str(out)).module
    assert any(a.num_heads < 4 for a in attention_modules(loaded).values())
    summary = json.loads(res.output[res.output.index("{"):])
    assert LatencyModel.build(loaded, VIT, table).predict() == pytest.approx(summary["predicted_ms"], abs=1e-4)
    exp = CliRunner().invoke(cli, ["export", str(out), "--format", "onnx", "--out", str(tmp_path / "exp")])
    assert exp.exit_code == 0, exp.output
    art = json.loads((tmp_path / "exp" / "manifest.json").read_text())["artifacts"][0]
    assert art["status"] == "ok" and art["parity"]["passed"] and art["parity"]["ref_max_abs"] > 0.1


@pytest.mark.parametrize("method", ["knapsack", "regularized"])
def test_fine_tuned_vit_prune_on_fashion_mnist(method):
    from edgeprune.data.specs import resolve_data
    from edgeprune.pruning.finetune import finetune

    model = tiny_vit()
    nn.init.normal_(model.heads.head.weight, std=0.02)
    data = resolve_data("fashion-mnist", VIT[0], batch_size=64, train_limit=640, val_limit=300)
    finetune(model, data.train, epochs=4, lr=0.05)
    model.eval()
    table = _table(model, _heavy_attention)
    one_shot = prune(model, VIT, table, speedup=1.4, data=data, epochs=0, verify=False)
    r = prune(model, VIT, table, method=method, speedup=1.4, data=data, epochs=2, verify=False)
    assert r.predicted_ms <= r.budget_ms + 1e-12 and r.accuracy_before > 0.4
    assert r.accuracy_after > one_shot.accuracy_after  # fine-tuning recovers what one-shot pruning lost
    assert LatencyModel.build(r.module, VIT, table).predict() == pytest.approx(r.predicted_ms, rel=1e-9)
    assert all(a.qkv.out_features == 3 * a.proj.in_features for a in attention_modules(r.module).values())


def test_rewritten_torchvision_vit_pickles_and_copies():
    import copy
    import io

    model = prunable_attention(tiny_vit(), VIT)[0]
    x = torch.randn(VIT[0].shape)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    for other in (torch.load(buf, weights_only=False), copy.deepcopy(model)):
        assert other._process_input.vit is other  # the rewrite follows its own model, not the original
        with torch.no_grad():
            assert torch.equal(other(x), model(x))
