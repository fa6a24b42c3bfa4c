"""Latency tables and the predictor: file round trip, refusal of bad tables, kill/resume of a real
build, graph-aware predictions for pruned configurations, CLI."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from edgeprune.cli.main import cli
from edgeprune.errors import DeviceError, PruningError, TableError
from edgeprune.latency import LatencyModel, LatencyTable, build_table, load_table
from edgeprune.latency.granularity import step_from_timings
from edgeprune.latency.builder import CALIBRATION_HEAVY, CALIBRATION_RANDOM, CALIBRATION_RATIOS
from edgeprune.latency.kernels import extract_kernels
from edgeprune.latency.table import library_versions
from edgeprune.latency.variants import group_ratios, out_channels, prune_variant
from edgeprune.models.inputs import InputSpec

REPO = Path(__file__).resolve().parents[1]
SMALL = (InputSpec((1, 3, 12, 12)),)


class SmallRes(nn.Module):
    """Stem, one residual block with a 1x1 shortcut, a depthwise conv, global pool, classifier."""

    def __init__(self, w=(16, 24)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, padding=1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU())
        self.conv1 = nn.Conv2d(w[0], w[1], 3, padding=1)
        self.conv2 = nn.Conv2d(w[1], w[1], 3, padding=1)
        self.short = nn.Conv2d(w[0], w[1], 1)
        self.dw = nn.Conv2d(w[1], w[1], 3, padding=1, groups=w[1])
        self.fc = nn.Linear(w[1], 5)

    def forward(self, x):
        x = self.stem(x)
        y = self.conv2(torch.relu(self.conv1(x))) + self.short(x)
        y = torch.relu(self.dw(torch.relu(y)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def small_model():
    torch.manual_seed(0)
    return SmallRes().eval()


def synthetic_table(graph, path=None, g=8, formula=None) -> LatencyTable:
    """A table filled from a formula (no timing): anchors plus grid points on every axis."""
    from edgeprune.devices.fingerprint import host_fingerprint

    fp = {**host_fingerprint("onnxruntime", 2), "libraries": library_versions("onnxruntime")}
    t = LatencyTable.new(device="host", runtime="onnxruntime", precision="fp32", threads=2, fingerprint=fp,
                         granularity=g, path=path)
    t.data["call_ms"] = 0.01

    def ms(k, ci, co):  # tiles of 8 output channels, linear in input channels
        if formula is not None:
            return formula(k, ci, co)
        return 0.001 + 1e-4 * (-(-co // 8) * 8) * max(ci, 1) * (1 + len(k.name) % 3) if k.dims == 2 else 2e-4 * ci

    for k in graph.kernels:
        key = k.family_key()
        if k.dims == 0:
            t.add_point(key, k.spec, 0, 0, 0, 0.05, 10)
            continue
        t.add_point(key, k.spec, k.dims, k.cin, k.cout, ms(k, k.cin, k.cout), 10)
        if k.dims == 2:
            t.add_anchor(key, k.cin, k.cout)
        for c in range(g, k.cout, g):
            t.add_point(key, k.spec, k.dims, k.cin if k.dims == 2 else c, c, ms(k, k.cin if k.dims == 2 else c, c), 10)
        if k.dims == 2:
            for c in range(g, k.cin, g):
                t.add_point(key, k.spec, 2, c, k.cout, ms(k, c, k.cout), 10)
    t.models[graph.structure_key] = {"name": "synthetic", "overhead_ms": 0.2, "scale": 1.1,
                                     "anchors": {k.name: [k.cin, k.cout] for k in graph.kernels if k.dims == 2}}
    return t


# ---------------------------------------------------------------- file format
def test_table_write_read_round_trip(tmp_path):
    graph = extract_kernels(small_model(), SMALL)
    path = tmp_path / "profiles" / "host" / "onnxruntime-fp32.json"
    t = synthetic_table(graph, path)
    t.save()
    back = load_table(path)
    assert back.data == json.loads(path.read_text())
    assert back.meta["runtime"] == "onnxruntime" and back.meta["schema_version"] == 1
    assert back.meta["fingerprint"]["threads"] == 2 and "torch" in back.meta["fingerprint"]["libraries"]
    assert back.n_points() == t.n_points() > len(graph.kernels)
    lm1 = LatencyModel.build(small_model(), SMALL, t)
    lm2 = LatencyModel.build(small_model(), SMALL, back)
    assert lm1.predict() == lm2.predict() > 0
    assert not list(path.parent.glob(".*.tmp"))  # atomic writes leave no temp files


def test_corrupted_tables_are_refused(tmp_path):
    graph = extract_kernels(small_model(), SMALL)
    good = synthetic_table(graph, tmp_path / "t.json")
    good.save()
    text = (tmp_path / "t.json").read_text()
    cases = {"truncated.json": text[: len(text) // 2], "garbage.json": "\x00\x01 not json",
             "array.json": "[1, 2]", "version.json": text.replace('"schema_version": 1', '"schema_version": 99', 1),
             "negative.json": json.dumps({**good.data, "entries": {"k": {"spec": {"op": "conv"}, "points": [[8, 8, -1]]}}})}
    for name, body in cases.items():
        p = tmp_path / name
        p.write_text(body)
        with pytest.raises(TableError) as e:
            load_table(p)
        msg = str(e.value)
        assert str(p) in msg and "\n" not in msg and "edgeprune profile" in msg, msg
        assert p.read_text() == body  # a refused file is left as it was
    with pytest.raises(TableError, match="not found"):
        load_table(tmp_path / "missing.json")


def test_foreign_fingerprint_refused_unless_forced(tmp_path, caplog):
    # an in-process CLI test may have raised the root level; the warning is edgeprune's own
    caplog.set_level(logging.WARNING, logger="edgeprune")
    graph = extract_kernels(small_model(), SMALL)
    t = synthetic_table(graph, tmp_path / "t.json")
    t.meta["fingerprint"] = {**t.meta["fingerprint"], "cpu": "Some Other CPU", "threads": 4}
    t.save()
    with pytest.raises(TableError, match="another setup.*cpu"):
        load_table(tmp_path / "t.json")
    forced = load_table(tmp_path / "t.json", force=True)
    assert forced.meta["fingerprint"]["cpu"] == "Some Other CPU"
    assert "another setup" in caplog.text


CPUINFO = Path(__file__).parent / "fixtures" / "cpuinfo" / "amd-epyc-family26.txt"  # a real VM's, processor 0


def test_cpu_identity_tells_cpu_generations_apart_under_one_name():
    from edgeprune.devices.agent import cpu_identity

    zen5 = CPUINFO.read_text()
    assert "model name\t: AMD EPYC\n" in zen5  # what the VM calls its CPU, whatever the generation
    ident = cpu_identity(zen5)
    assert ident.startswith("AuthenticAMD family 26 model 2 avx512f") and "avx512_vnni" in ident
    # the same name on an older generation without bf16 (family/model as a Zen 4 host reports them)
    zen4 = zen5.replace("cpu family\t: 26", "cpu family\t: 25").replace("model\t\t: 2\n", "model\t\t: 17\n")
    zen4 = zen4.replace(" avx512_bf16", "")
    assert cpu_identity(zen4).startswith("AuthenticAMD family 25 model 17 avx512f") and "bf16" not in cpu_identity(zen4)
    avx2 = "vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nflags\t\t: fpu sse4_2 avx avx2 fma\n"
    assert cpu_identity(avx2) == "GenuineIntel family 6 model 85 avx2"
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n\n" \
          "processor\t: 1\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\nCPU part\t: 0xd05\n"
    assert cpu_identity(arm) == "arm 0x41 part 0xd05/0xd42 asimddp"  # both core types of a big.LITTLE SoC
    assert cpu_identity("") is None and cpu_identity("processor\t: 0\n") is None


def test_table_of_another_cpu_generation_or_without_cpu_id_is_refused(tmp_path):
    from edgeprune.devices.fingerprint import host_fingerprint

    graph = extract_kernels(small_model(), SMALL)
    t = synthetic_table(graph, tmp_path / "t.json")
    here = t.meta["fingerprint"]
    if here["cpu_id"] is None:
        pytest.skip("this host's /proc/cpuinfo names no microarchitecture")
    assert here["cpu_id"] == host_fingerprint(here["runtime"], here["threads"])["cpu_id"]
    t.save()
    assert load_table(tmp_path / "t.json").meta["fingerprint"] == here
    t.meta["fingerprint"] = {**here, "cpu_id": "AuthenticAMD family 25 model 17 avx512f"}  # same 'cpu' name
    t.save()
    with pytest.raises(TableError, match="another setup.*cpu_id: table 'AuthenticAMD family 25"):
        load_table(tmp_path / "t.json")
    t.meta["fingerprint"] = {k: v for k, v in here.items() if k != "cpu_id"}  # built before cpu_id was recorded
    t.save()
    with pytest.raises(TableError, match=r"cpu_id: table not recorded \(an older table\)"):
        load_table(tmp_path / "t.json")


# ---------------------------------------------------------------- predictor
def _plan_of(pruned, lm):
    return {n: c for n, c in out_channels(pruned).items() if n in lm.channels()}


@pytest.mark.parametrize("arch", ["small", "mobilenet_v3_small", "resnet18", "squeezenet1_1"])
def test_pruned_configuration_equals_materialized_model(arch):
    if arch == "small":
        model, specs = small_model(), SMALL
    else:
        torchvision = pytest.importorskip("torchvision")
        model, specs = torchvision.models.get_model(arch, weights=None).eval(), (InputSpec((1, 3, 64, 64)),)
    graph = extract_kernels(model, specs)
    table = synthetic_table(graph)
    lm = LatencyModel.build(model, specs, table)
    assert lm.overhead_ms == 0.2 and lm.scale == 1.1
    for seed in range(2):
        ratios = group_ratios(graph, random.Random(seed), low=0.2, high=0.6)
        pruned = prune_variant(model, specs, ratios, list(ratios), round_to=8)
        plan = _plan_of(pruned, lm)
        assert any(plan[n] < c for n, c in lm.channels().items())
        direct = LatencyModel.build(pruned, specs, table)
        assert direct.predict() == pytest.approx(lm.predict(plan), rel=1e-12)
        assert lm.predict(plan) < lm.predict()
        # per-kernel widths agree too (graph-aware propagation = what the real smaller model has)
        assert [(r["cin"], r["cout"]) for r in lm.predict_layers(plan)] == \
               [(r["cin"], r["cout"]) for r in direct.predict_layers()]
        # the differentiable form equals predict() at integer counts
        tp = lm.torch_predict({n: torch.tensor(float(v)) for n, v in plan.items()})
        assert float(tp) == pytest.approx(lm.predict(plan), rel=1e-9)


def test_both_widths_shrunk_follow_a_bilinear_surface():
    """Per-call and read/write terms make a kernel non-separable; one off-axis point fixes it."""
    def bilinear(k, ci, co):
        return 0.01 + 1e-4 * ci + 1e-5 * ci * co if k.dims == 2 else 2e-4 * ci

    model = small_model()
    graph = extract_kernels(model, SMALL)
    conv1 = next(k for k in graph.kernels if k.name == "conv1")
    assert (conv1.cin, conv1.cout) == (16, 24)
    plan = {"stem.0": 8, "conv1": 8}  # conv1 at (8, 8): both widths halved or less

    def conv1_ms(table):
        lm = LatencyModel.build(model, SMALL, table)
        row = next(r for r in lm.predict_layers(plan) if r["name"] == "conv1")
        assert (row["cin"], row["cout"]) == (8, 8)
        return row["ms"] / lm.scale

    true = bilinear(conv1, 8, 8)
    separable = synthetic_table(graph, formula=bilinear)  # axis lines only: the product form
    assert conv1_ms(separable) < 0.95 * true
    t = synthetic_table(graph, formula=bilinear)
    t.add_point(conv1.family_key(), conv1.spec, 2, 8, 16, bilinear(conv1, 8, 16), 10)  # one diagonal probe
    assert conv1_ms(t) == pytest.approx(true, rel=1e-6)
    tp = LatencyModel.build(model, SMALL, t).torch_predict({n: torch.tensor(float(v)) for n, v in plan.items()})
    assert float(tp) == pytest.approx(LatencyModel.build(model, SMALL, t).predict(plan), rel=1e-9)


def test_noisy_probes_cannot_make_a_pruned_kernel_slower():
    """A probe timed in a slow phase (or a kappa fitted on noisy diagonal probes) must not turn a
    narrower kernel slower than a wider one: curves are read as non-decreasing staircases and the
    width interaction is capped so the answer never exceeds either axis curve."""
    from edgeprune.latency.predictor import monotone

    assert monotone([(8, 1.0), (16, 0.5), (24, 2.0), (32, 1.5)]) == [(8, 0.5), (16, 0.5), (24, 1.5), (32, 1.5)]

    def bilinear(k, ci, co):
        return 0.001 + 1e-5 * ci * co if k.dims == 2 else 2e-4 * ci

    model = small_model()
    graph = extract_kernels(model, SMALL)
    conv1 = next(k for k in graph.kernels if k.name == "conv1")
    key = conv1.family_key()
    t = synthetic_table(graph, formula=bilinear)
    m = bilinear(conv1, 16, 24)
    pts = t.points(key)
    for p in pts:
        if (p[0], p[1]) == (16, 16):
            p[2] = 3 * m  # an out-axis probe from a slow phase: 3x the unpruned kernel
    t.add_point(key, conv1.spec, 2, 8, 8, 5 * m, 10)  # a diagonal probe that drives kappa to its bound
    lm = LatencyModel.build(model, SMALL, t)
    r = next(r for r, k in zip(lm._resolved, lm.kernels) if k.name == "conv1")
    assert r.kappa == 3.0
    a, b = r.a[8], r.b[8]
    assert a + b - m + 3.0 * (a - m) * (b - m) / m > min(a, b)  # what the uncapped formula would answer

    def conv1_ms(ci, co):
        row = next(r for r in lm.predict_layers({"stem.0": ci, "conv1": co}) if r["name"] == "conv1")
        return row["ms"] / lm.scale

    grid = {(ci, co): conv1_ms(ci, co) for ci in (8, 16) for co in (8, 16, 24)}
    assert grid[(16, 24)] == pytest.approx(m)
    assert max(grid.values()) <= m * (1 + 1e-9)
    for ci in (8, 16):
        assert grid[(ci, 8)] <= grid[(ci, 16)] <= grid[(ci, 24)]
    plan = {"stem.0": 8, "conv1": 8}
    tp = lm.torch_predict({n: torch.tensor(float(v)) for n, v in plan.items()})
    assert float(tp) == pytest.approx(lm.predict(plan), rel=1e-9)


def test_no_kernel_is_predicted_cheaper_per_unit_of_work_than_at_its_anchor():
    """Narrow points timed near zero (a few microseconds minus the call cost) must not make pruned
    kernels free: a solver would prune exactly those. Lines and surfaces stay >= proportional."""
    def near_zero_when_narrow(k, ci, co):
        if k.dims == 2:
            return 1e-4 if min(ci, co) <= 8 else 0.001 + 1e-5 * ci * co
        return 1e-4 if ci <= 8 else 2e-4 * ci

    model = small_model()
    t = synthetic_table(extract_kernels(model, SMALL), formula=near_zero_when_narrow)
    lm = LatencyModel.build(model, SMALL, t)
    dense = {r["name"]: r for r in lm.predict_layers()}
    plan = {n: 8 for n in lm.channels()}
    pruned = {r["name"]: r for r in lm.predict_layers(plan)}
    checked = 0
    for name, r in pruned.items():
        d = dense[name]
        work = (r["cin"] / d["cin"]) * (r["cout"] / d["cout"]) if r["op"] in ("conv", "linear") else r["cout"] / d["cout"]
        if work < 1 and d["ms"] > 1e-3:  # (the stem and classifier are near zero unpruned already)
            assert r["ms"] >= d["ms"] * work * (1 - 1e-9), name
            assert r["ms"] > 1e-4 * lm.scale * 1.5, name  # not the near-zero point
            checked += 1
    assert checked >= 3
    tp = lm.torch_predict({n: torch.tensor(float(v)) for n, v in plan.items()})
    assert float(tp) == pytest.approx(lm.predict(plan), rel=1e-9)


def test_calibration_fit_is_least_squares_on_relative_error():
    from edgeprune.latency.calibration import fit_calibration

    sums = [10.0, 3.0, 5.0, 4.0]
    overhead, scale = fit_calibration(sums, [0.5 + 1.2 * s for s in sums])
    assert overhead == pytest.approx(0.5) and scale == pytest.approx(1.2)
    assert fit_calibration([10.0], [11.0]) == (pytest.approx(1.0), 1.0)  # one point: an overhead only
    # micro-kernels summing to ~2.2x a small model: the fit keeps scale 0.45 and no overhead (the old
    # [0.5, 2] clamp turned this into scale 0.5 with a negative overhead, inflating narrow plans' speedups)
    overhead, scale = fit_calibration([0.54, 0.32, 0.16], [0.45 * s for s in (0.54, 0.32, 0.16)])
    assert scale == pytest.approx(0.45) and overhead == pytest.approx(0.0, abs=1e-9)
    overhead, scale = fit_calibration(sums, [0.1 * s for s in sums])  # a broken table: bounded, overhead absorbs it
    assert scale == 0.25 and overhead < 0
    # weights: a point weighted 0 does not pull the line (it does unweighted)
    off = [0.5 + 1.2 * s for s in sums[:3]] + [9.0]
    assert fit_calibration(sums, off, weights=[1, 1, 1, 0]) == (pytest.approx(0.5), pytest.approx(1.2))
    assert fit_calibration(sums, off)[1] != pytest.approx(1.2)


def test_recalibrate_refits_on_recorded_timings_with_the_same_plans():
    """A predictor change is scored on timings already taken: recalibrate regenerates the same seeded
    calibration variants, so their kernel sums line up with the recorded measurements."""
    from edgeprune.latency.builder import calibration_variants, recalibrate

    model = small_model()
    graph = extract_kernels(model, SMALL)
    table = synthetic_table(graph)
    raw = LatencyModel.from_graph(graph, table)
    raw.set_calibration(0.0, 1.0)
    variants = calibration_variants(model, SMALL, graph, 8)
    assert len(variants) == 1 + len(CALIBRATION_RATIOS) + CALIBRATION_RANDOM + CALIBRATION_HEAVY
    assert variants[0][2] is None and [v[0] for v in variants[-CALIBRATION_HEAVY:]] == ["heavy"] * CALIBRATION_HEAVY
    sums = [raw.predict(plan) for _, _, plan in variants]
    assert len(set(sums[:-CALIBRATION_HEAVY])) == len(sums) - CALIBRATION_HEAVY  # distinct pruned variants
    # heavy: at least as narrow as every mild one (this 16-24 channel model bottoms out at one step of 8)
    assert max(sums[-CALIBRATION_HEAVY:]) <= min(sums[1:-CALIBRATION_HEAVY]) < sums[0]
    # tables calibrated before the heavy variants existed refit on the same first plans
    older = calibration_variants(model, SMALL, graph, 8, n_heavy=0)
    assert [raw.predict(plan) for _, _, plan in older] == pytest.approx(sums[:len(older)])
    overhead, scale, again = recalibrate(model, SMALL, graph, table, [0.3 + 1.2 * s for s in sums])
    assert again == pytest.approx(sums)
    assert overhead == pytest.approx(0.3) and scale == pytest.approx(1.2)
    # a record whose kernel sums came from an older predictor gets this predictor's sums and line back
    from edgeprune.latency.builder import refit_calibration

    measured = [0.3 + 1.2 * s for s in sums]
    table.models[graph.structure_key]["calibration"] = {"kernel_sum_ms": [2 * s for s in sums], "measured_ms": measured}
    record = refit_calibration(model, SMALL, graph, table)
    assert record["calibration"]["kernel_sum_ms"] == pytest.approx(sums) and record["scale"] == pytest.approx(1.2)
    assert LatencyModel.from_graph(graph, table).predict() == pytest.approx(measured[0], rel=1e-3)
    del table.models[graph.structure_key]["calibration"]
    with pytest.raises(TableError, match="no calibration timings"):
        refit_calibration(model, SMALL, graph, table)


def test_predictor_is_fast_graph_aware_and_checks_plans():
    model = small_model()
    graph = extract_kernels(model, SMALL)
    lm = LatencyModel.build(model, SMALL, synthetic_table(graph))
    ch = lm.channels()
    # the residual couples conv2 and the shortcut: one width; the classifier output is fixed
    assert {"stem.0", "conv2", "short", "conv1"} <= set(ch) and "fc" not in ch
    rows = {r["name"]: r for r in lm.predict_layers({"conv2": 8})}
    assert rows["conv2"]["cout"] == 8 and rows["short"]["cout"] == 8
    assert rows["dw"]["cin"] == rows["dw"]["cout"] == 8 and rows["fc"]["cin"] == 8  # depthwise + flatten follow
    rows = {r["name"]: r for r in lm.predict_layers({"stem.0": 8})}
    assert rows["conv1"]["cin"] == rows["short"]["cin"] == 8 and rows["conv2"]["cout"] == 24
    # staircase: 17..24 output channels cost the same (tiles of 8), 16 costs less
    assert lm.predict({"conv1": 17}) == lm.predict({"conv1": 24}) > lm.predict({"conv1": 16})
    assert lm.steps("conv1") == [9, 17]  # tiles of 8: 9..16 and 17..24 each cost one more tile
    x = torch.tensor(20.0, requires_grad=True)
    lm.torch_predict({"conv1": x}).backward()
    assert x.grad is not None and float(x.grad) >= 0
    with pytest.raises(PruningError, match="unknown layer"):
        lm.predict({"nope": 3})
    with pytest.raises(PruningError, match="cannot change"):
        lm.predict({"fc": 3})
    t0, n = time.perf_counter(), 2000
    for i in range(n):
        lm.predict({"conv1": 8 + i % 16})
    assert n / (time.perf_counter() - t0) > 1000


def test_table_that_cannot_answer_names_the_kernel():
    graph = extract_kernels(small_model(), SMALL)
    table = synthetic_table(graph)
    dw = next(k for k in graph.kernels if k.name == "dw")
    del table.entries[dw.family_key()]
    with pytest.raises(TableError, match="kernel dw .*edgeprune profile"):
        LatencyModel.build(small_model(), SMALL, table)


# ---------------------------------------------------------------- real builds
_BUILD_SCRIPT = textwrap.dedent('''
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_latency import small_model, SMALL
    from edgeprune.latency import build_table
    r = build_table(small_model(), SMALL, device="host", runtime="onnxruntime", precision="fp32", threads=1,
                    out=sys.argv[1], budget_s=float(sys.argv[2]), calibrate=sys.argv[3] == "1", progress=False)
    print("MEASURED", r.measured, "REUSED", r.reused)
''')


def _run_build(table: Path, budget: float, calibrate: bool):
    return subprocess.Popen([sys.executable, "-c", _BUILD_SCRIPT.format(tests=str(REPO / "tests")), str(table),
                             str(budget), "1" if calibrate else "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "EDGEPRUNE_QUIET": "1"}, start_new_session=True)


def _points(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {(k, p[0], p[1]): p[2] for k, e in data["entries"].items() for p in e["points"]}


@pytest.mark.slow
def test_build_killed_midway_then_resumed_without_loss(tmp_path):
    table = tmp_path / "onnxruntime-fp32.json"
    proc = _run_build(table, budget=60, calibrate=False)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if table.exists() and len(_points(table)) >= 4:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _points(table)  # parses: the file was never half-written
    assert len(before) >= 4
    proc = _run_build(table, budget=10, calibrate=True)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-2000:]
    after = _points(table)
    assert all(after[k] == v for k, v in before.items())  # nothing measured before the kill was lost or redone
    reused = int(out.split("REUSED")[1].split()[0])
    assert reused >= len(before) - 1  # the call-cost probe is kept at the top level, not as a point
    t = load_table(table)
    assert t.meta["kernel_timing"] == "nodes"  # a new ONNX Runtime table keeps the profiler's kernel times
    lm = LatencyModel.build(small_model(), SMALL, t)
    assert lm.record is not None and lm.predict() > 0
    # the model and one uniformly pruned variant per calibration ratio
    assert "calibration" in lm.record and len(lm.record["calibration"]["measured_ms"]) == 1 + len(CALIBRATION_RATIOS) + CALIBRATION_RANDOM + CALIBRATION_HEAVY


@pytest.mark.slow
def test_profile_and_predict_cli(tmp_path):
    model_file = tmp_path / "m.py"
    model_file.write_text(f"import sys\nsys.path.insert(0, {str(REPO / 'tests')!r})\n"
                          "from test_latency import small_model as build\n")
    table = tmp_path / "t.json"
    r = CliRunner().invoke(cli, ["profile", f"{model_file}:build", "--input", "1x3x12x12", "--threads", "1",
                                 "--out", str(table), "--budget", "0", "--validate", "2", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["measured"] > 0 and len(data["validation"]) == 2 and data["validation_summary"]["n"] == 1
    meta = json.loads(table.read_text())["meta"]  # --granularity auto (the default) probed this host
    probe = {int(w): ms for w, ms in meta["granularity_probe"]["ms"].items()}
    assert sorted(probe) == [4, 8, 16, 32, 64] and all(ms > 0 for ms in probe.values())
    assert meta["granularity"] == step_from_timings(probe)
    # node-timed ONNX Runtime: the profiler's per-node cost and the weight-read rate were measured with it
    assert meta["kernel_timing"] == "nodes" and 0 < meta["profiler_node_ms"] < 0.05 and meta["weight_ms_per_mb"] >= 0
    r = CliRunner().invoke(cli, ["predict", f"{model_file}:build", "--input", "1x3x12x12", "--table", str(table),
                                 "--json", "--channels", '{"conv1": 8}'])
    assert r.exit_code == 0, r.output
    pred = json.loads(r.output)
    assert pred["latency_ms"] > 0 and pred["calibrated"]
    assert next(x for x in pred["layers"] if x["name"] == "conv1")["cout"] == 8
    for args in (["predict", f"{model_file}:build", "--input", "1x3x12x12", "--table", str(tmp_path / "no.json")],
                 ["predict", f"{model_file}:build", "--input", "1x3x12x12", "--table", str(table), "--channels", "{x"],
                 ["profile", f"{model_file}:build", "--input", "1x3x12x12", "--device", str(tmp_path / "nodev.toml")]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 1 and r.output.startswith("Error: ") and r.output.count("\n") == 1, r.output


# probe timings (ms) seen on real hosts: ONNX Runtime on AVX-512 (NCHWc blocks of 16: 8 channels slower
# than 16) and ExecuTorch/XNNPACK on the same CPU (every halving pays down to 4)
@pytest.mark.parametrize("ms,grid", [
    ({4: 0.0593, 8: 0.1007, 16: 0.0613, 32: 0.1747, 64: 0.5985}, 16),
    ({4: 0.0409, 8: 0.0547, 16: 0.0927, 32: 0.2543, 64: 0.8000}, 4),
    ({4: 0.0500, 8: 0.0520, 16: 0.1000, 32: 0.2000, 64: 0.4000}, 8),   # 4 saves under 10% of 8
    ({4: 0.4000, 8: 0.4000, 16: 0.4000, 32: 0.4000, 64: 0.4000}, 32),  # nothing pays: the widest grid
])
def test_grid_is_the_narrowest_width_that_still_pays(ms, grid):
    assert step_from_timings(ms) == grid


# ---------------------------------------------------------------- device descriptors
@pytest.mark.parametrize("body,problem", [
    ('name = "x"\n[runtimes]\navailable = ["onnxruntime"]\ntypo = 1\n', "unknown key"),
    ('name = "x"\n[connection]\ntransport = "carrier-pigeon"\n[runtimes]\navailable = ["onnxruntime"]\n',
     "unknown transport"),
    ('name = "x"\n[connection]\ntransport = "ssh"\n[runtimes]\navailable = ["onnxruntime"]\n', "needs 'host'"),
    ('name = "x"\n', "needs 'available'"),
    ('name = "x"\n[runtimes]\navailable = ["tflite-gpu"]\n', "unknown runtime"),
    ('name = "x"\n[runtimes]\navailable = ["onnxruntime"]\n[compute]\nthreads = 0\n', "threads must be >= 1"),
    ('name = "x"\n[runtimes\n', "invalid TOML"),
])
def test_descriptor_validation_errors(tmp_path, body, problem):
    from edgeprune.devices.descriptor import load_device

    p = tmp_path / "dev.toml"
    p.write_text(body)
    with pytest.raises(DeviceError, match=problem):
        load_device(str(p))
    # the profile command reports it as one line, before measuring anything
    r = CliRunner().invoke(cli, ["profile", "torchvision:resnet18", "--input", "1x3x32x32", "--device", str(p),
                                 "--out", str(tmp_path / "t.json")])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and problem.split("'")[0] in r.output, r.output
    assert not (tmp_path / "t.json").exists()


def test_profile_refuses_runtime_the_device_lacks(tmp_path):
    p = tmp_path / "dev.toml"
    p.write_text('name = "board"\n[runtimes]\navailable = ["tensorrt"]\n')
    with pytest.raises(DeviceError, match="no runtime 'onnxruntime'"):
        build_table(small_model(), SMALL, device=str(p), runtime="onnxruntime", out=tmp_path / "t.json")


class RMSNormNet(nn.Module):
    """An RMSNorm-style statistic over channels, a broadcast weight, and a flatten/unflatten round trip."""

    def __init__(self, c=32):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(c, c, 1)
        self.w = nn.Parameter(torch.ones(c))
        self.fc = nn.Linear(c, 5)

    def forward(self, x):
        x = self.c1(x)
        x = x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-6) * self.w[None, :, None, None]
        x = self.c2(x)
        x = x.flatten(1).unflatten(1, (x.shape[1], 8, 8))
        return self.fc(x.mean((2, 3)))


def test_micro_models_of_channel_reductions_and_broadcasts_sweep():
    from edgeprune.latency.micro import build_micro
    from edgeprune.models.inputs import example_inputs

    graph = extract_kernels(RMSNormNet().eval(), (InputSpec((1, 3, 8, 8)),))
    ops = {k.op for k in graph.kernels}
    assert "reduce" in ops  # the statistic over channels: costs the input's width, leaves width 1
    assert not any(k.spec.get("fn", {}).get("name") == "unflatten" for k in graph.kernels)  # a view: free
    for k in graph.kernels:
        if k.dims == 0:
            continue
        for c in (k.cout, max(1, k.cout // 2), k.cout + 8):  # the anchor and swept widths
            module, specs = build_micro(k.spec, c if k.dims == 1 else k.cin, c)
            module(*example_inputs(specs))


def test_conv_kernels_keep_the_batch_frames_are_folded_into():
    """Video decoders fold frames into the batch: a conv at batch 9 costs ~9x one at batch 1,
    so the signature and the micro-model carry the batch (batch 1 keys are unchanged)."""
    from edgeprune.latency.micro import build_micro

    net = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    at9 = extract_kernels(net, (InputSpec((9, 4, 8, 8)),))
    at1 = extract_kernels(net, (InputSpec((1, 4, 8, 8)),))
    convs9 = [k for k in at9.kernels if k.op == "conv"]
    assert [k.spec.get("batch") for k in convs9] == [9, 9]
    assert all("batch" not in k.spec for k in at1.kernels if k.op == "conv")
    assert convs9[0].family_key() != next(k for k in at1.kernels if k.op == "conv").family_key()
    module, specs = build_micro(convs9[0].spec, 4, 8)
    assert specs[0].shape[0] == 9
    assert module(torch.zeros(specs[0].shape)).shape == (9, 8, 8, 8)


def test_measure_interleaved_times_each_model_every_round(monkeypatch):
    """Rounds: every model is timed once per round (exported once), and the fastest round is kept."""
    from edgeprune.devices.local import LocalRunner
    from edgeprune.devices.runner import BenchSettings
    from edgeprune.latency import measure

    calls = []
    real = LocalRunner.bench

    def spy(self, path, runtime, settings):
        calls.append(Path(path).name)
        return real(self, path, runtime, settings)

    monkeypatch.setattr(LocalRunner, "bench", spy)
    small = nn.Sequential(nn.ReLU()).eval()
    big = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1)).eval()
    fast = BenchSettings(threads=1, warmup=1, min_runs=3, max_runs=10, max_seconds=0.5)
    ms = measure.measure_interleaved([small, big], (InputSpec((1, 32, 32, 32)),), runtime="onnxruntime",
                                     settings=fast, passes=3, alternate=False)
    assert calls == ["model0.onnx", "model1.onnx"] * 3  # in turn, round after round
    assert len(ms) == 2 and 0 < ms[0] < ms[1]  # ~0.01 ms against ~1 ms: no noise reverses that


def test_measure_interleaved_relative_to_first_takes_the_median_ratio_within_rounds(monkeypatch):
    """The host's speed level differs between rounds: per-round ratios cancel it, minima of their own do not."""
    from edgeprune.devices.local import LocalRunner
    from edgeprune.devices.runner import BenchResult
    from edgeprune.latency import measure
    from edgeprune.runtimes.timing import Timing

    # (base, other) speed levels per round; round 3 catches the base at a fast level and the other at a slow one
    levels = [1.0, 1.0, 2.0, 2.0, 0.5, 1.5, 1.0, 1.0, 1.6, 1.6]
    ms_of = {"model0.onnx": 1.0, "model1.onnx": 0.5}  # the other model really is 2x faster
    state = {}

    def fake(self, path, runtime, settings):
        v = ms_of[Path(path).name] * next(state["it"])
        return BenchResult(str(path), runtime, "host", Timing(v, v, v, v, 0.0, v, 1, 0), {})

    monkeypatch.setattr(LocalRunner, "bench", fake)
    mods = [nn.Sequential(nn.ReLU()).eval(), nn.Sequential(nn.ReLU()).eval()]
    spec = (InputSpec((1, 4)),)
    state["it"] = iter(levels)
    rel = measure.measure_interleaved(mods, spec, runtime="onnxruntime", passes=5, relative_to_first=True,
                                      alternate=False)
    assert rel[0] == pytest.approx(0.5) and rel[1] / rel[0] == pytest.approx(0.5)  # ratio 0.5 in 4 of 5 rounds
    state["it"] = iter(levels)
    plain = measure.measure_interleaved(mods, spec, runtime="onnxruntime", passes=5, alternate=False)
    assert plain[1] / plain[0] == pytest.approx(1.0)  # minima from different levels: "no speedup at all"


def test_bench_blocks_times_real_artifacts_in_turns_and_drops_cold_runs(tmp_path):
    """ONNX Runtime sessions timed in blocks in turn: one median per artifact per block round, warm runs only."""
    from edgeprune.devices import local
    from edgeprune.devices.descriptor import load_device
    from edgeprune.devices.runner import BenchSettings
    from edgeprune.latency.measure import export_for_runtime

    spec = (InputSpec((1, 32, 32, 32)),)
    small = nn.Sequential(nn.ReLU()).eval()
    big = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1)).eval()
    paths = [export_for_runtime(m, spec, "onnxruntime", "fp32", tmp_path / f"m{i}") for i, m in enumerate((small, big))]
    settings = BenchSettings(threads=1, warmup=1, min_runs=25, max_runs=40, max_seconds=5.0)
    timings, rounds = local.LocalRunner(load_device("host")).bench_blocks(paths, "onnxruntime", settings, block=6)
    kept = 6 - local.BLOCK_SKIP
    assert [t.runs + t.rejected for t in timings] == [kept * len(rounds)] * 2
    assert -(-25 // kept) <= len(rounds) <= -(-40 // kept)  # min_runs reached, max_runs not passed
    assert all(len(r) == 2 for r in rounds)
    assert timings[1].p50_ms > 5 * timings[0].p50_ms  # ~1 ms of convs against ~0.01 ms of ReLU
    assert sum(b > 5 * a for a, b in rounds) >= 0.8 * len(rounds)


def test_measure_interleaved_alternates_in_blocks_and_takes_the_median_block_ratio(monkeypatch):
    """On a runner with bench_blocks the ratio is the median over block rounds of all passes, not of passes."""
    from edgeprune.devices.local import LocalRunner
    from edgeprune.latency import measure
    from edgeprune.runtimes.timing import summarize

    seen = []
    # each pass: 3 block rounds at different speed levels, the other model 0.4x of the base within each;
    # one block round per pass catches a level switch (other at 1.0x of base)
    levels = [(1.0, 0.4), (2.0, 0.8), (1.0, 1.0)]

    def fake_blocks(self, paths, runtime, settings, block=12):
        seen.append([Path(p).name for p in paths])
        rounds = [[a, b] for a, b in levels]
        return [summarize([r[0] for r in rounds]), summarize([r[1] for r in rounds])], rounds

    def no_bench(*a, **k):
        raise AssertionError("whole measurements in turn are for runners without bench_blocks")

    monkeypatch.setattr(LocalRunner, "bench_blocks", fake_blocks)
    monkeypatch.setattr(LocalRunner, "bench", no_bench)
    mods = [nn.Sequential(nn.ReLU()).eval(), nn.Sequential(nn.ReLU()).eval()]
    rel = measure.measure_interleaved(mods, (InputSpec((1, 4)),), runtime="onnxruntime", passes=2,
                                      relative_to_first=True, statistic=lambda t: t.p50_ms,
                                      block_statistic="median-ratio")
    assert seen == [["model0.onnx", "model1.onnx"]] * 2
    assert rel[0] == pytest.approx(1.0) and rel[1] / rel[0] == pytest.approx(0.4)


def test_measure_interleaved_takes_each_models_fastest_block_by_default(monkeypatch):
    """The slow levels slow the small model more than the large one (its ratio moves with them): the
    default is each model's fastest block median over all block rounds and passes, the quiet level."""
    from edgeprune.devices.local import LocalRunner
    from edgeprune.errors import EdgepruneError
    from edgeprune.latency import measure
    from edgeprune.runtimes.timing import summarize

    passes = iter([[(1.3, 0.75), (1.0, 0.5), (2.0, 1.4)], [(1.1, 0.6), (2.2, 1.5), (1.05, 0.52)]])

    def fake_blocks(self, paths, runtime, settings, block=12):
        rounds = [list(r) for r in next(passes)]
        return [summarize([r[0] for r in rounds]), summarize([r[1] for r in rounds])], rounds

    monkeypatch.setattr(LocalRunner, "bench_blocks", fake_blocks)
    mods = [nn.Sequential(nn.ReLU()).eval(), nn.Sequential(nn.ReLU()).eval()]
    ms = measure.measure_interleaved(mods, (InputSpec((1, 4)),), runtime="onnxruntime", passes=2,
                                     relative_to_first=True)
    assert ms == [pytest.approx(1.0), pytest.approx(0.5)]  # not 1.0 x the median block ratio (0.58)
    with pytest.raises(EdgepruneError, match="block_statistic must be one of fastest, median-ratio"):
        measure.measure_interleaved(mods, (InputSpec((1, 4)),), runtime="onnxruntime", block_statistic="mean")


def test_local_calibration_follows_a_curved_sum_to_latency_relation():
    """Small plans cost relatively more than their kernels say (fixed per-call work): one line through
    mild and heavy calibration models misses both; the locally weighted curve passes near each."""
    from edgeprune.latency.calibration import CalibrationCurve, fit_calibration

    sums = [0.54, 0.25, 0.32, 0.28, 0.16]
    measured = [0.3 * s ** 0.7 for s in sums]
    curve = CalibrationCurve(sums, measured)
    o, k = fit_calibration(sums, measured)
    local = max(abs(curve(s)[0] - t) / t for s, t in zip(sums, measured))
    line = max(abs(o + k * s - t) / t for s, t in zip(sums, measured))
    assert local < 0.01 < line
    xs = np.geomspace(0.01, 2.0, 400)
    ys = [curve(x)[0] for x in xs]
    assert all(b >= a for a, b in zip(ys, ys[1:]))  # pruning more never predicts slower
    value, slope = curve(0.3)
    assert slope == pytest.approx((curve(0.3 + 1e-6)[0] - curve(0.3 - 1e-6)[0]) / 2e-6, rel=1e-3)
    over, scale = curve.line_at(0.3)
    assert over + scale * 0.3 == pytest.approx(value)
    # beyond the calibration models: the edge's own line, continued (not the global one)
    edge_over, edge_scale = curve.line_at(min(sums))
    assert curve(0.02) == (pytest.approx(edge_over + edge_scale * 0.02), pytest.approx(edge_scale))
    assert edge_scale != pytest.approx(k, rel=1e-2)
    # records with fewer than three calibration models keep their one line
    assert CalibrationCurve.from_record({"calibration": {"kernel_sum_ms": sums[:2], "measured_ms": measured[:2]}}) is None
    assert CalibrationCurve.from_record({"calibration": {"kernel_sum_ms": sums, "measured_ms": measured}}) is not None


def test_predictor_reads_its_record_through_the_local_curve():
    from edgeprune.latency.calibration import CalibrationCurve

    model = small_model()
    graph = extract_kernels(model, SMALL)
    table = synthetic_table(graph)
    raw = LatencyModel.from_graph(graph, table)
    raw.set_calibration(0.0, 1.0)
    names = list(raw.channels())
    plans = [None] + [{n: max(1, round(c * f)) for n, c in raw.channels().items()} for f in (0.75, 0.5, 0.25)]
    sums = [raw.predict(p) for p in plans]
    assert len(set(sums)) == len(sums)
    measured = [0.05 + 0.8 * s ** 0.8 for s in sums]
    table.models[graph.structure_key]["calibration"] = {"kernel_sum_ms": sums, "measured_ms": measured}
    lm = LatencyModel.from_graph(graph, table)
    assert lm.curve is not None
    curve = CalibrationCurve(sums, measured)
    for p, s in zip(plans, sums):
        assert lm.predict(p) == pytest.approx(curve(s)[0], rel=1e-9)
    line = LatencyModel.from_graph(graph, table, local=False)  # the record's one line (0.2 + 1.1 s here)
    assert line.curve is None and line.predict() == pytest.approx(0.2 + 1.1 * sums[0])
    # the differentiable predictor: the same value, and the curve's slope in its gradient
    grads = []
    for name, width in raw.channels().items():
        x = width - 7.5  # across a tile's step (8 wide here): torch_predict is linear between integers
        c = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        lm.torch_predict({name: c}).backward()
        fd = (float(lm.torch_predict({name: torch.tensor(x + 1e-4, dtype=torch.float64)}))
              - float(lm.torch_predict({name: torch.tensor(x - 1e-4, dtype=torch.float64)}))) / 2e-4
        assert float(c.grad) == pytest.approx(fd, rel=1e-3, abs=1e-12), name
        grads.append(float(c.grad))
    assert max(grads) > 0
    # per-layer rows are scaled by the local line's scale at this plan
    over, scale = lm.calibration_at(plans[2])
    layers = sum(r["ms"] for r in lm.predict_layers(plans[2]))
    assert layers + over + scale * lm._fixed_ms == pytest.approx(lm.predict(plans[2]), rel=1e-6)


# ---------------------------------------------------------------- node timing (ONNX Runtime)
def _conv_hardswish_kernel():
    m = nn.Sequential(nn.Conv2d(16, 32, 1, bias=False), nn.Hardswish()).eval()
    graph = extract_kernels(m, (InputSpec((1, 16, 12, 12)),))
    return next(k for k in graph.kernels if k.op == "conv")


def test_node_timed_micro_models_keep_the_activation_fused_and_leave_layout_out(tmp_path):
    from edgeprune.devices.local import local_layers
    from edgeprune.latency.measure import export_for_runtime
    from edgeprune.latency.micro import build_micro
    from edgeprune.latency.node_timing import kernel_ms, micro_for_nodes

    k = _conv_hardswish_kernel()
    assert k.spec["act"] == "hardswish"
    module, specs = build_micro(k.spec, k.cin, k.cout)
    ops = {}
    for name, m in (("plain", module), ("nodes", micro_for_nodes(module, k.spec))):
        path = export_for_runtime(m, specs, "onnxruntime", "fp32", tmp_path / name)
        rows = local_layers(path, "onnxruntime", threads=1, runs=10)
        ops[name] = {r["op"] for r in rows}
        if name == "nodes":
            counted = kernel_ms(rows)
            assert counted == pytest.approx(sum(r["ms"] for r in rows if r["op"] == "Conv"))
            assert 0 < counted < sum(r["ms"] for r in rows)  # the reorders around it are real and left out
    # alone, ORT splits the graph-output HardSwish into HardSigmoid + Mul; with the tail it fuses into the Conv
    assert {"HardSigmoid", "Mul"} <= ops["plain"]
    assert not {"HardSigmoid", "Mul"} & ops["nodes"] and "Conv" in ops["nodes"]


def test_table_timing_mode_is_fixed_when_the_table_is_created(tmp_path):
    from edgeprune.latency.builder import _Measurer
    from edgeprune.latency.node_timing import timing_mode

    assert timing_mode("onnxruntime", "fp32") == timing_mode("executorch", "fp32") == "nodes"
    assert timing_mode("onnxruntime", "int8") == timing_mode("litert", "fp32") == "wall"
    assert timing_mode("executorch", "int8", "nodes") == "nodes"
    with pytest.raises(TableError, match="litert gives no per-node profile here; use --kernel-timing wall"):
        timing_mode("litert", "fp32", "nodes")
    graph = extract_kernels(small_model(), SMALL)
    old = synthetic_table(graph)  # a table from before node timing: no "kernel_timing" in its meta
    assert "kernel_timing" not in old.meta and not _Measurer(old, None, "onnxruntime", "fp32", 1).nodes
    old.meta["kernel_timing"] = "nodes"
    assert _Measurer(old, None, "onnxruntime", "fp32", 1).settings.per_layer


def test_ort_profile_reads_each_node_as_its_median_run(tmp_path):
    from edgeprune.devices.agent import ort_layers

    events = []
    for run, conv_us in enumerate([900.0, 10.0, 11.0, 12.0, 5000.0, 11.0]):
        events.append({"cat": "Session", "name": "model_run", "dur": conv_us + 5})
        events.append({"cat": "Node", "name": "conv_kernel_time", "dur": conv_us, "args": {"op_name": "Conv"}})
        events.append({"cat": "Node", "name": "out_kernel_time", "dur": 2.0, "args": {"op_name": "ReorderOutput"}})
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(events))
    rows = ort_layers(str(trace), skip=1)  # the first (cold) run dropped, one preempted run among the rest
    assert [r["op"] for r in rows] == ["Conv", "ReorderOutput"]
    assert rows[0]["ms"] == pytest.approx(0.011) and rows[0]["runs"] == 5


def test_cache_flusher_writes_every_byte_each_call():
    from edgeprune.devices import agent

    flushed = []
    flush = agent._cache_flusher(np, mb=1)
    buf = flush.__closure__[0].cell_contents
    flush()
    flushed.append(float(buf[0]))
    flush()
    flushed.append(float(buf[-1]))
    assert flushed == [1.0, 2.0] and buf.nbytes == 2**20  # every byte written each call


def test_xnnpack_layout_transposes_are_left_out_but_a_transpose_kernel_keeps_its_own():
    from edgeprune.latency.node_timing import kernel_ms

    rows = [{"name": "Transpose (ND, X32) #1", "op": "", "ms": 0.020},
            {"name": "Convolution (NHWC, F32) DWConv #1", "op": "", "ms": 0.069},
            {"name": "Transpose (ND, X32) #2", "op": "", "ms": 0.018}]
    assert kernel_ms(rows, "dwconv") == pytest.approx(0.069)
    shuffle = [{"name": "Static Reshape (NC) #1", "op": "", "ms": 0.001}, {"name": "Transpose (ND, X32) #1", "op": "", "ms": 0.004},
               {"name": "Static Reshape (NC) #2", "op": "", "ms": 0.001}]
    assert kernel_ms(shuffle, "transpose") == pytest.approx(0.004)
    ort = [{"name": "x_nchwc", "op": "ReorderInput", "ms": 0.005}, {"name": "y", "op": "Transpose", "ms": 0.003}]
    assert kernel_ms(ort, "transpose") == pytest.approx(0.003)


def test_unknown_kernel_timing_fails_before_measuring(tmp_path):
    with pytest.raises(TableError, match="kernel timing must be one of auto, nodes, wall"):
        build_table(small_model(), SMALL, runtime="onnxruntime", out=tmp_path / "t.json", kernel_timing="profiler")
    assert not (tmp_path / "t.json").exists()


def test_node_times_are_corrected_for_the_profilers_cost_per_node():
    from edgeprune.latency.node_timing import kernel_ms

    rows = [{"name": "conv", "op": "Conv", "ms": 0.010}, {"name": "x", "op": "ReorderOutput", "ms": 0.004},
            {"name": "add", "op": "Add", "ms": 0.001}]
    assert kernel_ms(rows) == pytest.approx(0.011)
    assert kernel_ms(rows, node_ms=0.002) == pytest.approx(0.008)  # 0.010 - 0.002, the Add cannot go below 0


def test_profiler_cost_probe_on_onnx_runtime_is_a_few_microseconds_per_node():
    """A real probe: ORT's profiler costs microseconds per node here, far below a millisecond and above
    nothing (the chain's profiled nodes sum to more than its wall-clock time grows)."""
    from edgeprune.devices.descriptor import load_device
    from edgeprune.devices.runner import get_runner
    from edgeprune.latency.node_timing import profiler_node_ms

    ms = profiler_node_ms(get_runner(load_device("host")), "onnxruntime", "fp32", 1)
    assert 1e-4 < ms < 0.05


def test_narrow_kernels_cost_no_less_than_the_cheapest_measured_of_their_op():
    """Below a kernel's narrowest measurement its line ran to zero: an 8-channel SE conv was priced at
    a sixth of what the cheapest conv in the table costs. Now lines run down to that floor."""
    from edgeprune.latency.predictor import curve, op_floors

    line = curve([32, 64], [0.004, 0.008], 64, 8, floor=0.003)
    assert line[32] == pytest.approx(0.004) and line[16] == pytest.approx(0.0035)  # halfway to the floor
    assert curve([32, 64], [0.004, 0.008], 64, 8)[16] == pytest.approx(0.002)   # without one: proportional
    graph = extract_kernels(small_model(), SMALL)
    t = synthetic_table(graph)
    floors = op_floors(t)
    conv_points = [p[2] for e in t.entries.values() if e["spec"]["op"] == "conv" for p in e["points"]]
    assert floors["conv"] == pytest.approx(min(conv_points))
    lm = LatencyModel.from_graph(graph, t)
    narrow = {n: 1 for n in lm.channels()}
    rows = lm.predict_layers(narrow)
    scale = lm.calibration_at(narrow)[1]
    assert all(r["ms"] >= scale * floors[r["op"]] - 1e-12 for r in rows if r["op"] in floors)


def test_weights_read_from_memory_are_priced_per_megabyte():
    """A table that carries weight_ms_per_mb adds each conv/linear's weight bytes at that rate."""
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    graph = extract_kernels(m, (InputSpec((1, 64)),))
    t = synthetic_table(graph)
    plain = LatencyModel.from_graph(graph, t)
    plain.set_calibration(0.0, 1.0)
    t.meta["weight_ms_per_mb"] = 0.05
    cold = LatencyModel.from_graph(graph, t)
    cold.set_calibration(0.0, 1.0)
    weights = 64 * 32 + 32 * 10
    assert cold.predict() - plain.predict() == pytest.approx(0.05 * 4 * weights / 1e6)
    plan = {graph.symbols[0]: 16}
    assert cold.predict(plan) - plain.predict(plan) == pytest.approx(0.05 * 4 * (64 * 16 + 16 * 10) / 1e6)
    grad_plan = {n: torch.tensor(float(v), requires_grad=True) for n, v in plan.items()}
    assert float(cold.torch_predict(grad_plan).detach()) == pytest.approx(cold.predict(plan), rel=1e-6)
