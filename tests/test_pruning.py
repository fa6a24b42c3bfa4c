"""Hardware-aware pruning: solver optimality vs brute force, real pruned models (shapes, predicted latency of
the plan == predictor on the materialized model, budget, ONNX export), the model directory, CLI and errors.

Latency tables here are synthetic (a formula, no timing) so the checks are exact and fast; the
measured promise on real tables is exercised by bench/prune_pareto.py."""

from __future__ import annotations

import copy
import itertools
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from edgeprune.cli.main import cli
from edgeprune.errors import PruningError
from edgeprune.latency import LatencyModel
from edgeprune.latency.kernels import extract_kernels
from edgeprune.models.inputs import InputSpec
from edgeprune.pruning import prune
from edgeprune.pruning.solver import Choice, knapsack_plan, solve_mckp

sys.path.insert(0, str(Path(__file__).parent))
from test_latency import SMALL, small_model, synthetic_table  # noqa: E402


# ---------------------------------------------------------------- solver
def _brute(options, cap):
    best = None
    for pick in itertools.product(*[range(len(o)) for o in options]):
        c = sum(options[g][j][0] for g, j in enumerate(pick))
        v = sum(options[g][j][1] for g, j in enumerate(pick))
        if c <= cap + 1e-9 and (best is None or v > best):
            best = v
    return best


def test_mckp_is_optimal_against_brute_force():
    rng = random.Random(0)
    for _ in range(150):
        n = rng.randint(1, 5)
        options = [[(rng.uniform(0, 3), rng.uniform(0, 5)) for _ in range(rng.randint(1, 4))] for _ in range(n)]
        cap = rng.uniform(0, 2.0 * n)
        pick = solve_mckp(options, cap)
        expect = _brute(options, cap)
        if expect is None:
            assert pick is None
            continue
        cost = sum(options[g][j][0] for g, j in enumerate(pick))
        value = sum(options[g][j][1] for g, j in enumerate(pick))
        assert cost <= cap + 1e-9
        assert value == pytest.approx(expect, abs=1e-9)


def _random_choices(rng, n):
    choices, cost = [], {}
    for g in range(n):
        full = rng.choice([8, 16, 24, 32])
        counts = list(range(8, full + 1, 8)) if full > 8 else [8]
        imp = np.sort(np.array([rng.uniform(0.1, 2) for _ in range(full)]))[::-1]
        choices.append(Choice(f"g{g}", counts, [float(imp[:k].sum()) for k in counts]))
        w = rng.uniform(0.01, 0.05)
        cost[f"g{g}"] = {k: w * (-(-k // 16) * 16) + 0.002 * k for k in counts}  # staircase + slope
    return choices, cost


def test_knapsack_plan_is_optimal_for_additive_latency():
    rng = random.Random(1)
    for _ in range(40):
        choices, cost = _random_choices(rng, rng.randint(2, 5))
        full = {c.name: c.counts[-1] for c in choices}

        def latency(plan, cost=cost, full=full):
            return 0.1 + sum(cost[n][plan.get(n, full[n])] for n in full)

        lo = latency({c.name: c.counts[0] for c in choices})
        budget = rng.uniform(lo, latency(full))
        plan = knapsack_plan(choices, latency, budget)
        assert latency(plan) <= budget + 1e-12
        value = sum(dict(zip(c.counts, c.values))[plan[c.name]] for c in choices)
        best = max(sum(dict(zip(c.counts, c.values))[k] for c, k in zip(choices, ks))
                   for ks in itertools.product(*[c.counts for c in choices])
                   if latency({c.name: k for c, k in zip(choices, ks)}) <= budget)
        assert value == pytest.approx(best, rel=1e-12)


def test_knapsack_plan_respects_a_coupled_budget_and_leaves_nothing_that_fits():
    rng = random.Random(2)
    for _ in range(20):
        choices, _ = _random_choices(rng, 4)
        names = [c.name for c in choices]
        full = {c.name: c.counts[-1] for c in choices}

        def latency(plan, full=full):  # a chain: each layer costs cin * cout (not additive)
            w = [plan.get(n, full[n]) for n in names]
            return 0.05 + 1e-3 * (3 * w[0] + sum(a * b for a, b in zip(w, w[1:])))

        lo = latency({c.name: c.counts[0] for c in choices})
        budget = rng.uniform(lo, latency(full))
        plan = knapsack_plan(choices, latency, budget)
        assert latency(plan) <= budget
        for c in choices:  # greedy completion: no single group can grow without breaking the budget
            i = c.counts.index(plan[c.name])
            if i + 1 < len(c.counts):
                assert latency({**plan, c.name: c.counts[i + 1]}) > budget
    with pytest.raises(PruningError, match="minimum reachable latency"):
        knapsack_plan(choices, latency, lo * 0.5)


def test_group_share_values_protect_narrow_and_coupled_groups():
    """Per-channel scores normalized to mean 1 make a channel of a 16-wide group worth one of a 64-wide group;
    the knapsack's value is the share of a group's importance kept (x layers it sets), so when cutting 8
    channels costs the same anywhere, the wide group gives them up, and of two equal groups the uncoupled one."""
    from edgeprune.pruning.importance import group_values

    narrow = np.array([1.5] * 8 + [0.5] * 8)  # mean 1: its weakest 8 sum to 4 < the wide group's weakest 8 (8)
    wide = np.ones(64)
    per_channel = 0.01  # additive: every channel costs the same, so only the values decide

    def latency(plan):
        return per_channel * (plan.get("narrow", 16) + plan.get("wide", 64))

    budget = per_channel * (80 - 8)
    counts_n, counts_w = [8, 16], list(range(8, 65, 8))
    old = knapsack_plan([Choice("narrow", counts_n, [float(np.sort(narrow)[::-1][:k].sum()) for k in counts_n]),
                         Choice("wide", counts_w, [float(k) for k in counts_w])], latency, budget)
    assert old == {"narrow": 8, "wide": 64}  # raw per-channel values cut the narrow group in half
    new = knapsack_plan([Choice("narrow", counts_n, group_values(narrow, counts_n)),
                         Choice("wide", counts_w, group_values(wide, counts_w))], latency, budget)
    assert new == {"narrow": 16, "wide": 56}
    assert group_values(wide, [32, 64], weight=3) == pytest.approx([1.5, 3.0])  # share x layers
    coupled = knapsack_plan([Choice("a", counts_n, group_values(np.ones(16), counts_n, weight=2)),
                             Choice("b", counts_n, group_values(np.ones(16), counts_n, weight=1))],
                            lambda p: per_channel * (p.get("a", 16) + p.get("b", 16)), per_channel * 24)
    assert coupled == {"a": 16, "b": 8}


def test_candidates_drop_widths_that_cost_more_than_a_wider_one():
    """Off-tile widths can cost more than the next tile (a runtime's fast path needs multiples of 8): such a
    width is never a candidate, so the floor is the cheapest option and the knapsack never pays more for less."""
    from edgeprune.pruning.groups import ChannelGroup, set_candidates

    class Curve:  # a latency curve with tiles of 8 and off-tile widths 30% slower than the tile above
        def predict(self, plan):
            k = plan["conv"]
            tile = -(-k // 8) * 8
            return 0.01 * tile * (1.3 if k % 8 else 1.0)

    g = ChannelGroup(root="conv", members=["conv"], channels=32)
    set_candidates([g], Curve(), granularity=4, min_keep=0.1)
    assert g.counts == [8, 16, 24, 32]  # 4, 12, 20, 28 cost more than 8, 16, 24, 32


def test_measured_fit_lands_the_plan_under_the_measured_budget():
    """The promise is measured: with a host that runs plans 25% slower than the predictor says (predictor error)
    and whose speed drifts 2x between timings, the fit tightens the predicted budget until the plan measures
    within its share of the unpruned model timed beside it, and does not over-prune."""
    from edgeprune.pruning.api import FIT_HIGH, FIT_LOW, _fit_measured, _Problem
    from edgeprune.pruning.importance import score_groups

    model, specs = small_model(), SMALL
    table = synthetic_table(extract_kernels(model, specs))
    lm = LatencyModel.build(model, specs, table)
    prob = _Problem(model, specs, lm, table, (), 0.1)
    score_groups(model, prob.dg, prob.groups, "magnitude")
    speed = iter([1.0, 2.0, 0.7, 1.5, 1.0, 2.0])  # the host's speed at each fit timing: ratios must not care

    def pair(m):  # deterministic stand-in for side-by-side timing: the unpruned model exact, plans +25%
        f = next(speed)
        return f * lm.predict(), f * 1.25 * LatencyModel.build(m, specs, table).predict()

    share = 1 / 1.5  # a 1.5x measured speedup
    log: list = []
    kept, eff = _fit_measured(prob, model, specs, pair, share, share * lm.predict(), log)
    measured = 1.25 * prob.latency(kept) / lm.predict()
    assert measured <= share * FIT_HIGH + 1e-12 and eff < share * lm.predict()
    assert len(log) >= 2 and log[0]["measured_share"] > share  # the first, unfitted plan missed
    assert len({round(e["measured_base_ms"], 6) for e in log}) > 1  # the base really was timed at other speeds
    # nothing wider fits: growing any group by one candidate measures over the fit's ceiling
    for g in prob.groups:
        i = g.counts.index(kept[g.root])
        if i + 1 < len(g.counts) and measured < share * FIT_LOW:
            assert 1.25 * prob.latency({**kept, g.root: g.counts[i + 1]}) / lm.predict() > share * FIT_HIGH


def test_measured_fit_tries_the_narrowest_plan_when_the_floor_plan_measures_over():
    """A noisy table can price a wider plan under the all-narrowest one; at the predicted floor the fit then
    measures the narrowest plan itself instead of giving up on a plan it could still make faster."""
    from edgeprune.pruning.api import FIT_HIGH, _fit_measured, _Problem
    from edgeprune.pruning.importance import score_groups
    from edgeprune.pruning.materialize import apply_plan

    model, specs = small_model(), SMALL
    table = synthetic_table(extract_kernels(model, specs))
    lm = LatencyModel.build(model, specs, table)
    prob = _Problem(model, specs, lm, table, (), 0.1)
    score_groups(model, prob.dg, prob.groups, "magnitude")
    floor = {g.root: g.counts[0] for g in prob.groups}
    wider = {g.root: g.counts[-1] for g in prob.groups}
    prob.solve = lambda b: dict(wider)  # what a non-monotone table makes the solver return at the floor

    def pair(m):  # the host: latency ~ parameters (the narrowest plan is the fastest)
        return float(sum(p.numel() for p in model.parameters())), float(sum(p.numel() for p in m.parameters()))

    narrow = pair(apply_plan(model, specs, prob.groups, floor)[0])[1] / pair(model)[0]
    log: list = []
    kept, eff = _fit_measured(prob, model, specs, pair, narrow * 1.02, prob.minimum_ms, log)
    assert kept == floor and eff == prob.minimum_ms
    assert log[-1].get("floor") and log[0]["measured_share"] > narrow * 1.02  # the solver's plan missed, the floor fits
    # a budget between the two: the floor would overshoot it, so plans between them are measured
    share = (narrow + 1.0) / 2
    log = []
    kept, _ = _fit_measured(prob, model, specs, pair, share, prob.minimum_ms, log)
    got = pair(apply_plan(model, specs, prob.groups, kept)[0])[1] / pair(model)[0]
    assert kept not in (floor, wider) and narrow < got <= share * FIT_HIGH
    assert any("between" in e for e in log)


# ---------------------------------------------------------------- real models, synthetic tables
def _arch(name):
    if name == "small":
        return small_model(), SMALL
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, num_classes=10).eval(), (InputSpec((1, 3, 32, 32)),)


def prune_checked(model, specs, table, **kwargs):
    """prune() (no measurement), checking that the input model is left as it was and that the pruned one
    runs and keeps the output shape."""
    x = torch.randn(specs[0].shape)
    with torch.no_grad():
        ref = model(x)
    r = prune(model, specs, table, verify=False, **kwargs)
    with torch.no_grad():
        out = r.module(x)
        assert torch.equal(model(x), ref)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    return r


@pytest.mark.parametrize("arch", ["small", "resnet18", "mobilenet_v3_small"])  # residual, depthwise, SE
def test_pruned_model_runs_keeps_shapes_and_matches_its_prediction(arch):
    model, specs = _arch(arch)
    table = synthetic_table(extract_kernels(model, specs))
    r = prune_checked(model, specs, table, speedup=1.6)
    assert r.predicted_ms <= r.budget_ms + 1e-12 and r.predicted_ms < r.predicted_base_ms
    assert sum(r.plan.values()) < sum(r.base_channels.values())
    # the plan's predicted latency is the predictor's answer for the physically pruned model
    direct = LatencyModel.build(r.module, specs, table)
    assert direct.predict() == pytest.approx(r.predicted_ms, rel=1e-9)
    mods = dict(r.module.named_modules())
    for layer, k in r.plan.items():
        m = mods[layer]
        assert (m.out_channels if isinstance(m, nn.Conv2d) else m.out_features) == k


def test_ignored_layers_and_output_layers_are_not_pruned():
    model, specs = small_model(), SMALL
    table = synthetic_table(extract_kernels(model, specs))
    r = prune(model, specs, table, speedup=1.5, ignore=["conv1"], verify=False)
    assert r.module.conv1.out_channels == model.conv1.out_channels
    assert r.module.fc.out_features == model.fc.out_features and r.module.stem[0].in_channels == 3
    with pytest.raises(PruningError, match="minimum reachable latency .* ms"):
        prune(model, specs, table, speedup=50, verify=False)


class OnlyHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_nothing_prunable_is_a_clear_error():
    specs = (InputSpec((1, 3, 8, 8)),)
    model = OnlyHead().eval()
    table = synthetic_table(extract_kernels(model, specs))
    with pytest.raises(PruningError, match="nothing to prune"):
        prune(model, specs, table, speedup=1.2, verify=False)


def test_masked_channels_equal_removed_channels():
    """The knapsack's iterative schedule fine-tunes a masked model; removing those channels keeps the function."""
    from edgeprune.pruning.api import _Problem
    from edgeprune.pruning.gates import ChannelGates
    from edgeprune.pruning.importance import score_groups
    from edgeprune.pruning.materialize import apply_plan

    model, specs = _arch("resnet18")
    for m in model.modules():  # non-trivial BN statistics so masking after BN matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.bias.data.uniform_(-0.5, 0.5)
    table = synthetic_table(extract_kernels(model, specs))
    lm = LatencyModel.build(model, specs, table)
    prob = _Problem(model, specs, lm, table, (), 0.1)
    score_groups(model, prob.dg, prob.groups, "magnitude")
    kept = prob.solve(lm.predict() / 1.8)
    gates = ChannelGates(model, prob.dg, prob.groups, soft=False)
    gates.set_masks(prob.kept_indices(kept))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        masked = model(x)
    gates.remove()
    pruned, _ = apply_plan(model, specs, prob.groups, kept)
    with torch.no_grad():
        assert torch.allclose(pruned(x), masked, atol=1e-4)


# ---------------------------------------------------------------- model directory, CLI, fine-tuning
@pytest.fixture()
def small_setup(tmp_path):
    f = tmp_path / "small.py"
    f.write_text(f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                 "from test_latency import small_model\n\ndef build():\n    return small_model()\n")
    table = synthetic_table(extract_kernels(small_model(), SMALL), tmp_path / "table.json")
    table.save()
    return f"{f}:build", tmp_path / "table.json"


def test_cli_prune_writes_a_loadable_model_dir_and_export_reads_it(small_setup, tmp_path):
    spec, table = small_setup
    out = tmp_path / "pruned"
    res = CliRunner().invoke(cli, ["prune", spec, "--input", "1x3x12x12", "--table", str(table), "--speedup", "1.5",
                                   "--out", str(out), "--no-verify", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    assert summary["predicted_ms"] <= summary["budget_ms"] and summary["method"] == "knapsack"
    for name in ("model.json", "weights.pt", "plan.json", "prune.json", "report.md", "report.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "model.json").read_text())["kind"] == "pruned"
    layers = json.loads((out / "plan.json").read_text())["layers"]
    tbl = load_table_(table)
    uniform_ms = LatencyModel.build(small_model(), SMALL, tbl).predict({r["layer"]: r["uniform"] for r in layers})
    assert uniform_ms <= summary["budget_ms"] + 1e-9  # the uniform plan shown beside the kept widths fits the budget
    assert "| layer | channels | kept | uniform |" in (out / "report.md").read_text()
    from edgeprune.models import load_model

    loaded = load_model(str(out))
    lm = LatencyModel.build(loaded.module, SMALL, load_table_(table))
    assert lm.predict() == pytest.approx(summary["predicted_ms"], abs=1e-4)
    x = torch.randn(1, 3, 12, 12)
    assert loaded.module(x).shape == (1, 5)
    exp = CliRunner().invoke(cli, ["export", str(out), "--format", "onnx", "--out", str(tmp_path / "exp")])
    assert exp.exit_code == 0, exp.output
    assert list((tmp_path / "exp").rglob("*.onnx"))


def load_table_(path):
    from edgeprune.latency import load_table

    return load_table(path)


def test_cli_errors_are_one_line(small_setup, tmp_path):
    spec, table = small_setup
    base = ["prune", spec, "--input", "1x3x12x12", "--table", str(table), "--out", str(tmp_path / "o"), "--no-verify"]
    for extra, msg in ((["--speedup", "40"], "minimum reachable latency"),
                       ([], "exactly one of --target-latency"),
                       (["--speedup", "2", "--method", "regularized"], "needs --data"),
                       (["--target-latency", "0.5", "--epochs", "1"], "--epochs needs --data")):
        res = CliRunner().invoke(cli, base + extra)
        assert res.exit_code != 0 and msg in res.output, res.output
        assert "Traceback" not in res.output and res.output.strip().count("\n") == 0
    for opt, bad in (("--balance", "1.5"), ("--lr", "0")):  # click's usage error names the range
        res = CliRunner().invoke(cli, base + ["--speedup", "2", opt, bad])
        assert res.exit_code == 2 and f"Invalid value for '{opt}'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def fashion_teacher():
    """A small CNN trained briefly on 640 Fashion-MNIST images (a teacher that knows something)."""
    from edgeprune.data.specs import resolve_data
    from edgeprune.pruning.finetune import finetune

    specs = (InputSpec((1, 1, 28, 28)),)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()
    data = resolve_data("fashion-mnist", specs[0], batch_size=64, train_limit=640, val_limit=500)
    finetune(model, data.train, epochs=10, lr=0.05)
    return model, specs, data


@pytest.mark.parametrize("method", ["knapsack", "regularized"])
def test_fine_tuned_prune_on_fashion_mnist(method, fashion_teacher):
    model, specs, data = fashion_teacher
    table = synthetic_table(extract_kernels(model, specs))
    one_shot = prune(model, specs, table, speedup=1.3, data=data, epochs=0, verify=False)
    r = prune(model, specs, table, method=method, speedup=1.3, data=data, epochs=3, verify=False)
    assert r.predicted_ms <= r.budget_ms
    assert r.accuracy_before > 0.4 and one_shot.accuracy_before == r.accuracy_before
    assert r.accuracy_after > one_shot.accuracy_after  # fine-tuning recovers what one-shot pruning lost
    phases = [t["phase"] for t in r.training]
    assert phases == (["gates", "recover"] if method == "regularized" else ["step 1/3", "step 2/3", "step 3/3"])
    assert LatencyModel.build(r.module, specs, table).predict() == pytest.approx(r.predicted_ms, rel=1e-9)


def test_the_fine_tunes_learning_rate_is_the_users(fashion_teacher, monkeypatch):
    """--lr reaches every fine-tune of the prune and is recorded; a bad one is refused before any work."""
    import edgeprune.pruning.finetune as ft

    model, specs, data = fashion_teacher
    table = synthetic_table(extract_kernels(model, specs))
    seen, real = [], ft.finetune

    def spy(*a, **k):
        seen.append(k["lr"])
        return real(*a, **{**k, "epochs": 0.05})
    monkeypatch.setattr(ft, "finetune", spy)
    r = prune(model, specs, table, speedup=1.3, data=data, epochs=1, verify=False, lr=0.07)
    assert seen == [0.07] * 3 and r.to_json()["lr"] == 0.07
    seen.clear()
    assert prune(model, specs, table, speedup=1.3, data=data, epochs=1, verify=False).to_json()["lr"] == seen[0] == 0.02
    with pytest.raises(PruningError, match="--lr must be positive"):
        prune(model, specs, table, speedup=1.3, data=data, epochs=1, verify=False, lr=-1.0)


def test_a_budget_near_the_tables_floor_is_checked_against_the_floor_measured():
    """A table that calls narrow plans far cheaper than they run (here a made-up power law) puts its
    floor at a speedup this host cannot give: near that floor the prune stops with what was measured
    instead of training the narrowest plan; without a measurement it trusts the table."""
    model = small_model()
    graph = extract_kernels(model, SMALL)
    table = synthetic_table(graph, formula=lambda k, ci, co: 1e-6 * (max(ci, 1) * co) ** 2 if k.dims == 2 else 1e-6 * ci ** 2)
    table.models[graph.structure_key]["overhead_ms"] = 0.0
    lm = LatencyModel.from_graph(graph, table)
    probe = prune(model, SMALL, table, speedup=1.2, verify=False)
    floor_speedup = lm.predict() / probe.minimum_ms
    assert floor_speedup > 4  # what the table claims; a 12x12 model on ONNX Runtime is nowhere near it
    asked = floor_speedup / 1.05
    with pytest.raises(PruningError, match=r"within 5% of the minimum reachable latency .* measured .* ms on this host"):
        prune(model, SMALL, table, speedup=asked, verify=True)
    r = prune(model, SMALL, table, speedup=asked, verify=False)  # no measurement: the table decides
    assert r.predicted_ms <= r.budget_ms * (1 + 1e-9)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_prune_measures_its_promise_on_the_tables_runtime_and_precision(precision, tmp_path):
    """The table's precision decides: an int8 table prunes against int8 costs and the check times int8 ONNX."""
    model = small_model()
    table = synthetic_table(extract_kernels(model, SMALL))
    table.meta["precision"] = precision
    r = prune(model, SMALL, table, speedup=1.5, verify=True)
    m = r.measured
    assert m["measured_ms"] > 0 and m["measured_base_ms"] > 0  # timings of sub-0.1 ms models: no ordering asserted
    assert m["measured_speedup"] == pytest.approx(m["measured_base_ms"] / m["measured_ms"], rel=1e-2)
    # the verdict takes exact values, the record rounds them (ms to 6 decimals, the share to 3): compare away
    # from the rounding band at each line (4 decimals of ms put a 0.016 ms model on the wrong side once)
    assert m["within_budget"] or not m["ok"]
    if abs(m["speedup_share"] - 0.9) > 1e-3:
        assert m["ok"] == (m["within_budget"] and m["speedup_share"] >= 0.9)
    assert m["measured_base_at_start_ms"] > 0  # timed alone at the start (a --target-latency budget is a share of it)
    # --speedup holds the pruned model to the base as measured beside it, not to the predicted-units budget
    assert m["measured_budget_ms"] == pytest.approx(m["measured_base_ms"] / 1.5, abs=1e-4)
    if abs(m["measured_ms"] - m["measured_budget_ms"] * 1.03) > 2e-6:
        assert m["within_budget"] == (m["measured_ms"] <= m["measured_budget_ms"] * 1.03)
    table.meta["device"] = "jetson-orin-nano"  # a table from elsewhere: predicted only, said so
    assert "not this host" in prune(model, SMALL, table, speedup=1.5, verify=True).measured["skipped"]


def test_build_config_prune_stage_hands_the_pruned_model_to_export(small_setup, tmp_path):
    from edgeprune.build import load_build_config, run_build

    spec, table = small_setup
    data = json.loads(table.read_text())  # a formula table is no measurement of this host: predicted only
    data["meta"]["device"] = "jetson-orin-nano"
    table.write_text(json.dumps(data))
    cfg = tmp_path / "b.toml"
    cfg.write_text(f'schema_version = 1\nname = "t"\n[model]\nspec = "{spec}"\ninput = "1x3x12x12"\n'
                   f'[[stages]]\ntype = "prune"\ntable = "{table}"\nspeedup = 1.5\n'
                   '[[stages]]\ntype = "export"\nformats = ["onnx"]\n')
    out = tmp_path / "out"
    res = run_build(load_build_config(cfg), out)
    manifest = json.loads((out / "build.json").read_text())
    assert res.failed_stage is None, manifest
    prune_stage = manifest["stages"][0]["summary"]
    assert prune_stage["predicted_ms"] <= prune_stage["budget_ms"] and "not this host" in prune_stage["measured"]["skipped"]
    assert json.loads((Path(prune_stage["model_dir"]) / "model.json").read_text())["kind"] == "pruned"
    assert list((out / "02-export").rglob("*.onnx"))


# ---------------------------------------------------------------- balance (how far from uniform widths)
def _problem(model, specs, table, balance=0.0):
    from edgeprune.pruning.api import _Problem
    from edgeprune.pruning.importance import score_groups

    lm = LatencyModel.build(model, specs, table)
    prob = _Problem(model, specs, lm, table, (), 0.1, balance)
    score_groups(model, prob.dg, prob.groups, "magnitude")
    return prob, lm


def test_uniform_plan_is_the_widest_common_share_within_budget():
    model = small_model()
    table = synthetic_table(extract_kernels(model, SMALL))
    prob, lm = _problem(model, SMALL, table)
    budget = prob.minimum_ms + 0.5 * (lm.predict() - prob.minimum_ms)
    plan = prob.uniform_plan(budget)
    assert prob.latency(plan) <= budget

    def at(r):
        return {g.root: min(c for c in g.counts if c >= r * g.channels - 1e-9) for g in prob.groups}
    share = max(plan[g.root] / g.channels for g in prob.groups)
    assert any(at(r) == plan for r in np.linspace(0, 1, 2001))  # one common share for all groups
    assert prob.latency(at(share + 1e-3)) > budget  # the next wider common share breaks the budget
    for b in (0.5, 1.0):
        kept = prob.solve(budget, b)
        assert prob.latency(kept) <= budget
        assert all(kept[g.root] >= b * plan[g.root] - 1e-9 for g in prob.groups), (b, kept, plan)
    free = prob.solve(budget, 0.0)  # the knapsack alone cuts some group below the uniform plan; b = 1 forbids it
    assert any(free[g.root] < plan[g.root] for g in prob.groups), (free, plan)


def test_prune_with_balance_keeps_every_group_at_least_as_wide_as_the_uniform_plan():
    model = small_model()
    table = synthetic_table(extract_kernels(model, SMALL))
    prob, lm = _problem(small_model(), SMALL, table)
    budget = prob.minimum_ms + 0.5 * (lm.predict() - prob.minimum_ms)
    uniform = prob.uniform_plan(budget)
    kept = {}
    for b in (0.0, 1.0):
        r = prune(model, SMALL, table, target_latency_ms=budget, balance=b, verify=False)
        kept[b] = {g["root"]: g["kept"] for g in r.groups}
        assert r.predicted_ms <= budget and r.to_json()["balance"] == b
    assert any(kept[0.0][k] < v for k, v in uniform.items())  # free, the knapsack goes below uniform somewhere
    assert all(kept[1.0][k] >= v for k, v in uniform.items()), (kept[1.0], uniform)
    with pytest.raises(PruningError, match="--balance must be in"):
        prune(model, SMALL, table, target_latency_ms=budget, verify=False, balance=1.5)
