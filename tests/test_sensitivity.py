"""The knapsack's measured value (pruning.sensitivity): what cutting each group alone does to the model's output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from edgeprune.cli.main import cli
from edgeprune.data.specs import DataBundle
from edgeprune.errors import PruningError
from edgeprune.latency import LatencyModel
from edgeprune.latency.kernels import extract_kernels
from edgeprune.models.inputs import InputSpec
from edgeprune.pruning import prune

sys.path.insert(0, str(Path(__file__).parent))
from test_latency import synthetic_table  # noqa: E402

SPECS = (InputSpec((1, 3, 8, 8)),)


class HalfDead(nn.Module):
    """conv2's channels 8..15 reach the output through zero weights: cutting them changes nothing, while
    every channel of conv1 carries signal. Importance shares cannot tell the two groups apart."""

    def __init__(self, width2: int = 16):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, width2, 3, padding=1)
        self.fc = nn.Linear(width2, 10)
        with torch.no_grad():
            self.conv2.weight[8:] *= 0.01  # the least important by magnitude too, so they are the ones cut
            self.conv2.weight[16:] *= 0.1  # (and of those, 16.. before 8..16)
            self.fc.weight[:, 8:] = 0.0
            self.fc.weight *= 20  # confident logits: a live cut moves the output distribution visibly

    def forward(self, x):
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean((2, 3)))


def _data(n=64, batch=16):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    loader = [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]
    return DataBundle(loader, loader, 10, "random")


def _problem(model):
    from edgeprune.pruning.api import _Problem
    from edgeprune.pruning.importance import score_groups

    table = synthetic_table(extract_kernels(model, SPECS))
    lm = LatencyModel.build(model, SPECS, table)
    prob = _Problem(model, SPECS, lm, table, (), 0.1)
    score_groups(model, prob.dg, prob.groups, "magnitude")
    return prob, table


def test_sensitivity_prices_a_dead_cut_near_zero_a_live_one_high_and_never_falls_with_width():
    from edgeprune.pruning.sensitivity import measure_sensitivity

    model = HalfDead().eval()
    prob, _ = _problem(model)
    batches = list(_data().train)
    measure_sensitivity(model, prob.dg, prob.groups, batches, model)
    by = {g.root: g for g in prob.groups}
    assert set(by) == {"conv1", "conv2"} and by["conv2"].counts == [8, 16]
    for g in prob.groups:
        assert all(a < b for a, b in zip(g.values, g.values[1:]))  # wider is worth more, if only by the tie-break
    cost = {r: g.values[-1] - g.values[0] for r, g in by.items()}  # what cutting to 8 costs
    assert cost["conv1"] > 1e-2  # every conv1 channel reaches the output
    assert cost["conv2"] < 1e-3 * cost["conv1"]  # the dead half: the tie-break only
    # with a group already at 8 (its cut channels masked), counts at or above it cost nothing more
    measure_sensitivity(model, prob.dg, prob.groups, batches, model, current={"conv1": 8, "conv2": 16})
    assert 0 < by["conv1"].values[1] - by["conv1"].values[0] < 1e-3 * cost["conv1"]


def test_sensitivity_knapsack_cuts_the_group_that_costs_the_output_nothing():
    model = HalfDead().eval()
    prob, table = _problem(model)
    budget = prob.latency({"conv1": 16, "conv2": 8})
    data = _data()
    r = prune(model, SPECS, table, target_latency_ms=budget, data=data, verify=False, value="sensitivity")
    assert r.value == "sensitivity" and r.to_json()["value"] == "sensitivity"
    assert r.plan == {"conv1": 16, "conv2": 8}
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(r.module(x), model(x), atol=1e-6)  # the cut removed nothing that mattered
    assert prune(model, SPECS, table, target_latency_ms=budget, verify=False).value == "importance"  # no data


def test_cuts_that_measure_free_still_keep_what_the_budget_allows():
    """conv2's channels 8..23 are dead: 8, 16 and 24 channels measure the same. A budget that fits 16 gets 16,
    not the cheapest of the tie (which left a ResNet plan well under its budget)."""
    model = HalfDead(width2=24).eval()
    prob, table = _problem(model)
    assert [g.counts for g in prob.groups if g.root == "conv2"] == [[8, 16, 24]]
    budget = prob.latency({"conv1": 16, "conv2": 16})
    r = prune(model, SPECS, table, target_latency_ms=budget, data=_data(), verify=False)
    assert r.value == "sensitivity" and r.plan == {"conv1": 16, "conv2": 16}


def test_value_errors_are_one_line(tmp_path):
    model = HalfDead().eval()
    _, table = _problem(model)
    with pytest.raises(PruningError, match="--value sensitivity .* give --data"):
        prune(model, SPECS, table, speedup=1.2, verify=False, value="sensitivity")
    with pytest.raises(PruningError, match="unknown value 'loss'"):
        prune(model, SPECS, table, speedup=1.2, verify=False, value="loss")
    f = tmp_path / "m.py"
    f.write_text(f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                 "from test_sensitivity import HalfDead\n\ndef build():\n    return HalfDead()\n")
    table.save(tmp_path / "t.json")
    res = CliRunner().invoke(cli, ["prune", f"{f}:build", "--input", "1x3x8x8", "--table", str(table.path),
                                   "--speedup", "1.2", "--value", "sensitivity", "--no-verify", "--out",
                                   str(tmp_path / "out")])
    assert res.exit_code != 0 and "give --data" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_cli_prune_with_data_reports_the_measured_value(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                 "from test_sensitivity import HalfDead, _data\n\ndef build():\n    return HalfDead()\n\n"
                 "def loaders():\n    d = _data()\n    return d.train, d.val, 10\n")
    model = HalfDead().eval()
    prob, table = _problem(model)
    table.save(tmp_path / "t.json")
    budget = prob.latency({"conv1": 16, "conv2": 8})
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["prune", f"{f}:build", "--input", "1x3x8x8", "--table", str(tmp_path / "t.json"),
                                   "--target-latency", str(budget), "--data", f"{f}:loaders", "--no-verify",
                                   "--probes", "2", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "prune.json").read_text())
    assert summary["value"] == "sensitivity" and summary["value_seconds"] >= 0
    assert summary["value_probes"] == 2  # one cut below each group's width (8 of 16), measured once
    assert "value sensitivity" in (out / "report.md").read_text()
    assert {r["layer"]: r["kept"] for r in json.loads((out / "plan.json").read_text())["layers"]} == {"conv1": 16, "conv2": 8}


def test_probes_measure_a_spread_of_counts_and_interpolate_between():
    """A 64-wide group has 7 counts below its width; with 3 probes its narrowest, middle and widest cut are
    measured as they are without a cap, and every count between gets a divergence between its neighbours'."""
    from edgeprune.pruning.sensitivity import measure_sensitivity, probe_counts

    assert probe_counts(list(range(24)), 16) == sorted(set(probe_counts(list(range(24)), 16)))
    assert len(probe_counts(list(range(24)), 16)) == 16 and probe_counts(list(range(24)), 16)[::15] == [0, 23]
    assert probe_counts([8, 16, 24], 16) == [8, 16, 24]
    model = HalfDead(width2=64).eval()
    with torch.no_grad():
        model.fc.weight[:, 8:] = torch.randn(10, 56) * 5  # every conv2 channel live, so each cut costs more
    prob, _ = _problem(model)
    by = {g.root: g for g in prob.groups}
    assert by["conv2"].counts == [8, 16, 24, 32, 40, 48, 56, 64]
    batches = list(_data().train)
    full = measure_sensitivity(model, prob.dg, prob.groups, batches, model, probes=None)
    exact = list(by["conv2"].values)
    capped = measure_sensitivity(model, prob.dg, prob.groups, batches, model, probes=3)
    assert full - capped == 7 - 3  # conv1's one cut is measured either way
    vals = by["conv2"].values
    for i in (0, 6):  # counts 8 and 56: measured
        assert vals[i] == pytest.approx(exact[i], rel=1e-6, abs=1e-9)
    # 32 is measured too, but the uncapped value there may be raised to a narrower count's (values never fall
    # with width, and counts 16 and 24 measured worse on this model); the capped one interpolates those two
    assert vals[3] <= exact[3] + 1e-9
    for i, (lo, hi) in {1: (0, 3), 2: (0, 3), 4: (3, 6), 5: (3, 6)}.items():
        assert vals[lo] <= vals[i] <= vals[hi]
    assert any(abs(vals[i] - exact[i]) > 1e-9 for i in (1, 2, 4, 5))  # interpolated, not measured


def test_probes_below_two_are_a_one_line_error():
    model = HalfDead().eval()
    _, table = _problem(model)
    with pytest.raises(PruningError, match="--probes must be at least 2"):
        prune(model, SPECS, table, speedup=1.2, data=_data(), verify=False, probes=1)
