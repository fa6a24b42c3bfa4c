"""Latency predictor fidelity: predicted vs measured end-to-end latency of random channel-pruned variants.

For each torchvision architecture (untrained weights) x runtime (ONNX Runtime, ExecuTorch/XNNPACK;
fp32, batch 1, 3x96x96, 1 thread on the host):

1. `build_table` profiles the model into one table per runtime (shared by all models, so kernel
   families two models have in common are measured once), with a per-model time budget for
   the adaptive sweeps, and calibrates the model's overhead/scale on the model and 3 random
   channel-pruned variants (seed 7919);
2. VARIANTS random variants (torch-pruning, random ratio 10-60% per coupled group, round_to = GRID,
   seed 0) are measured end to end and compared with `LatencyModel.predict(plan)`. They are timed
   in the same 5 interleaved rounds as the calibration models: timed in a session of their own, a
   whole session came out ~1.4x slower or faster than the calibration's on this shared machine.
   Protocol 3: within each round the models take turns in blocks of a few ms
   (LocalRunner.bench_blocks), the unpruned model's fastest repeat times the median per-block ratio;
   protocol 2 timed each model as one whole measurement per round and took the median per-round ratio, and protocol 1
   took each model's fastest repeat over 3 rounds, which mixes the host's speed levels
   (bench/results/host_noise.md, bench/results/ratio_noise.md). Protocol 4: the same blocks, and
   each model's latency is its fastest block median over all block rounds (measure_interleaved's
   block_statistic="fastest"): the slow levels slow a small model more than a large one, so a
   per-block ratio still moved with them.

`--rescore` scores finished cells again after a change to how tables are read (PREDICTOR): same
tables, same recorded timings, calibration refitted on them; nothing is timed.

`--remeasure` re-times the calibration and the scored variants of cells finished under an older
protocol on the committed tables (no new kernel measurements: sweep budget 0) and keeps the
cells' table-build figures, which that protocol change does not touch.

Threads: 1. This machine has 2 cores shared with other jobs; with 2 threads every parallel
region waits for a core whenever anything else runs (XNNPACK showed whole 8 ms scheduler
quanta per inference), which measures the neighbours, not the predictor.

The unpruned model itself is not scored (the calibration was fitted on it). Every finished
(model, runtime) is appended to bench/results/predictor_fidelity.jsonl, and the tables are
written measurement by measurement, so a killed run resumes where it stopped.

    flock /tmp/edgeprune-bench.lock nice -n 5 python bench/predictor_fidelity.py          # resumable
    ... predictor_fidelity.py --fresh      # drop finished cells and tables (after a table-format change)
    python bench/predictor_fidelity.py --report                                          # rebuild report
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.results_io import environment  # noqa: E402
from edgeprune.latency.calibration import BANDWIDTH  # noqa: E402
from edgeprune.latency.node_timing import MODES  # noqa: E402
RESULTS = ROOT / "bench" / "results"
JSONL = RESULTS / "predictor_fidelity.jsonl"
TABLES = RESULTS / "predictor_fidelity_tables"
RES = 96
THREADS = 1  # see the docstring: 2 threads on 2 shared cores stall on any other process
VARIANTS = 5
# the channel grid of new tables and the scored variants' round_to (--grid): "auto", the grid `edgeprune
# profile` probes for the runtime (16 for ONNX Runtime on this AVX-512 host, 4 for ExecuTorch), i.e. the
# widths edgeprune's own pruning produces there; --grid 8 gives the variants of every run before
# 2026-12-03 16:43 UTC (bench/results/predictor_fidelity_v5/ and older)
GRID: int | str = "auto"
KERNEL_TIMING = "auto"  # how new tables time micro-models (--kernel-timing; edgeprune.latency.node_timing)
PROTOCOL = 4  # end-to-end timing statistic (see the docstring)
# how tables are read: 1 = measured points as they are; 2 = each width's line a non-decreasing
# staircase and the width interaction capped (edgeprune.latency.predictor.monotone, _combine);
# 3 = also no kernel cheaper per unit of work than at its anchor (proportional_floor), and the
# calibration scale bounded to [0.25, 4] instead of [0.5, 2]; 4 = each plan through the calibration
# curve, a least-squares line per kernel sum with the calibration models weighted by distance
# (edgeprune.latency.calibration) instead of one line through all of them; 5 = no kernel below the cheapest
# time measured for its op (predictor.op_floors), and on tables that carry weight_ms_per_mb each kernel's
# weights priced as read from memory (edgeprune.latency.node_timing)
PREDICTOR = 5
# 12 architectures, 8 families; small/fast ones so 12 x 2 runtimes fit the shared machine
MODELS = ["resnet18", "mobilenet_v3_small", "mobilenet_v2", "mnasnet0_5", "squeezenet1_1", "regnet_x_400mf",
          "efficientnet_b0", "resnet34", "mobilenet_v3_large", "mnasnet1_0", "squeezenet1_0", "regnet_y_400mf"]
FAMILY = {"resnet": "ResNet", "mobilenet_v2": "MobileNetV2", "mobilenet_v3": "MobileNetV3", "mnasnet": "MnasNet",
          "squeezenet": "SqueezeNet", "efficientnet": "EfficientNet", "regnet": "RegNet", "convnext": "ConvNeXt",
          "shufflenet": "ShuffleNet"}
RUNTIMES = ["onnxruntime", "executorch"]
TOOLS = ("torch", "torchvision", "onnx", "onnxscript", "onnxruntime", "executorch", "torchao", "torch-pruning", "numpy")


def family(model: str) -> str:
    return next((v for k, v in FAMILY.items() if model.startswith(k)), model)


def done_rows(protocol: int | None = None, predictor: int | None = None) -> dict[tuple[str, str], dict]:
    """The last row per (model, runtime) of `protocol` (default: PROTOCOL); with `predictor`, the last scored
    one of that predictor version (rows from before predictor versions count as version 1)."""
    protocol = PROTOCOL if protocol is None else protocol
    rows = {}
    if JSONL.exists():
        for line in JSONL.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: that cell reruns
            if r.get("protocol", 1) != protocol:
                continue
            if predictor is not None and (r.get("predictor", 1) != predictor or "rows" not in r):
                continue
            rows[(r["model"], r["runtime"])] = r
    return rows


BUILD_FIELDS = ("kernels", "families", "measurements", "reused_points", "table_points", "table_build_s", "budget_hit",
                "budget_s", "kappas")


def run_cell(model: str, runtime: str, budget_s: float, variants: int, old: dict | None = None) -> dict:
    """Build (or, given an older protocol's row `old`, only re-time) one cell."""
    import torchvision

    from edgeprune.latency import build_table
    from edgeprune.latency.validate import error_summary
    from edgeprune.models.inputs import InputSpec

    specs = (InputSpec((1, 3, RES, RES)),)
    module = torchvision.models.get_model(model, weights=None).eval()
    t0 = time.perf_counter()
    report = build_table(module, specs, device="host", runtime=runtime, precision="fp32", threads=THREADS,
                         out=TABLES / f"{runtime}-fp32.json", validate=variants + 1, granularity=GRID,
                         kernel_timing=KERNEL_TIMING,
                         budget_s=0.0 if old else budget_s, model_name=model, progress=False)
    rows = report.validation
    scored = [r for r in rows if r["variant"] != "base"]
    record = report.table.models[report.model_key]
    row = {"model": model, "family": family(model), "runtime": runtime, "input": f"1x3x{RES}x{RES}", "grid": int(report.table.meta.get("granularity") or 8),
           "protocol": PROTOCOL, "predictor": PREDICTOR,
           "kernel_timing": report.table.meta.get("kernel_timing", "wall")}
    if old:
        # re-timed only: the build figures are the old cell's (this run's table lookups are not a build)
        record["table_build_s"] = old["table_build_s"]
        report.table.save()
        row.update({k: old.get(k) for k in BUILD_FIELDS}, remeasured=True, new_points=report.measured)
    else:
        from edgeprune.latency.predictor import LatencyModel

        lm = LatencyModel.build(module, specs, report.table)
        # every point the model's predictions draw on (families shared with earlier models count here too)
        table_points = sum(len(report.table.points(key)) for key in {k.family_key() for k in lm.kernels})
        kappas = sorted({round(r.kappa, 3) for r, k in zip(lm._resolved, lm.kernels) if r is not None and k.dims == 2})
        row.update(budget_s=budget_s, kappas=kappas, kernels=report.kernels, families=report.families,
                   measurements=report.measured, reused_points=report.reused, table_points=table_points,
                   table_build_s=record.get("table_build_s"), budget_hit=report.budget_hit)
    row.update(total_s=round(time.perf_counter() - t0, 1), overhead_ms=record.get("overhead_ms"),
               scale=record.get("scale"), calibration=report.calibration, rows=rows, summary=error_summary(scored))
    return row


def _cell(old: dict) -> tuple:
    """(module, input specs, committed table, kernel graph) of a finished cell, for scoring it again."""
    import torchvision

    from edgeprune.latency import load_table
    from edgeprune.latency.kernels import extract_kernels
    from edgeprune.models.inputs import InputSpec

    specs = (InputSpec((1, 3, RES, RES)),)
    module = torchvision.models.get_model(old["model"], weights=None).eval()
    # force: nothing is timed here; the recorded timings and the table come from the same (earlier) host
    table = load_table(TABLES / f"{old['runtime']}-fp32.json", force=True)
    return module, specs, table, extract_kernels(module, specs)


def rescore_cell(old: dict) -> dict:
    """Score a finished cell again with the current predictor: same table, same timings (the calibration
    models' and the scored variants', from the row), new predictions and calibration fit."""
    from edgeprune.latency.builder import refit_calibration
    from edgeprune.latency.validate import error_summary, score_variants, validation_variants

    module, specs, table, graph = _cell(old)
    # the refit lives in this in-memory table only: the committed table keeps the calibration it was built with
    record = table.models.setdefault(graph.structure_key, {})
    record["calibration"] = dict(old["calibration"])
    g = int(table.meta.get("granularity") or 8)
    record = refit_calibration(module, specs, graph, table, granularity=g)
    checks = validation_variants(module, specs, graph, n=len(old["rows"]), seed=0, granularity=g)
    rows = score_variants(table, graph, checks, [r["measured_ms"] for r in old["rows"]])
    cal = {**record["calibration"], "overhead_ms": record["overhead_ms"], "scale": record["scale"]}
    scored = [r for r in rows if r["variant"] != "base"]
    return {**old, "predictor": PREDICTOR, "rescored": True, "overhead_ms": record["overhead_ms"],
            "scale": record["scale"], "calibration": cal, "rows": rows, "summary": error_summary(scored),
            "previous_summary": old.get("summary")}


ABLATION = 3  # 1: without the heavy variant; 2: also a locally weighted fit (now the predictor's, v4);
              # 3: one line without the heavy variant, on predictor v4's kernel sums


def ablate_cell(old: dict, n_fit: int = 4) -> dict:
    """The cell's variants scored with one calibration line fitted on its first `n_fit` calibration
    models only (the model and its mild variants, without the heavy one added for 2-3x prunes), on
    the recorded timings; nothing is timed. With the report's `previous` row (one line through all
    of them), it says what the heavy point costs a single line, and what the local curve wins back."""
    from edgeprune.latency.builder import fit_calibration, recalibrate
    from edgeprune.latency.validate import error_summary, score_variants, validation_variants

    module, specs, table, graph = _cell(old)
    cal_ms = old["calibration"]["measured_ms"]
    g = int(table.meta.get("granularity") or 8)
    cal_sums = recalibrate(module, specs, graph, table, cal_ms, granularity=g)[2]  # each calibration model's kernel sum
    overhead, scale = fit_calibration(cal_sums[:n_fit], cal_ms[:n_fit])
    table.models.setdefault(graph.structure_key, {}).update(overhead_ms=overhead, scale=scale)  # in memory only
    checks = validation_variants(module, specs, graph, n=len(old["rows"]), seed=0, granularity=g)
    rows = score_variants(table, graph, checks, [r["measured_ms"] for r in old["rows"]], local=False)
    scored = [r for r in rows if r["variant"] != "base"]
    return {"version": ABLATION, "fitted_on": n_fit, "overhead_ms": round(overhead, 6), "scale": round(scale, 6),
            "rows": rows, "summary": error_summary(scored)}


def _previous_summary(rows: list[dict], first: dict) -> dict:
    """The error summary of the changed cells' variants as they were scored before (`first`)."""
    from edgeprune.latency.validate import error_summary

    out = []
    for r in rows:
        f = first.get((r["model"], r["runtime"]))
        if f:
            out += [v for v in f["rows"] if v["variant"] != "base"]
    return error_summary(out)


def write_report(timed: bool = True) -> dict:
    """The JSON, markdown and plot from the JSONL. `timed=False` (a rescore, an ablation, --report):
    the machine recorded is the one the timings were taken on, from the previous report."""
    from edgeprune.files import atomic_write_json, atomic_write_text
    from edgeprune.latency.validate import error_summary

    done = done_rows()
    rows = [r for r in done.values() if "rows" in r]
    failed = [r for r in done.values() if "error" in r]
    # what `previous` compares with: re-timed cells -> the same predictor on the older protocol's timings;
    # rescored cells -> the predictor before this one on the same timings
    rescored_now = any(r.get("rescored") and r.get("predictor") == PREDICTOR for r in rows)
    if not rescored_now and any(r.get("remeasured") and r.get("protocol") == PROTOCOL for r in rows):
        first, since = done_rows(PROTOCOL - 1, predictor=PREDICTOR), f"timing protocol {PROTOCOL - 1}"
        changed = [r for r in rows if (r["model"], r["runtime"]) in first]
    else:
        first, since = (done_rows(predictor=PREDICTOR - 1), f"predictor v{PREDICTOR - 1}")
        changed = [r for r in rows if r.get("rescored")]
        first = first if changed else {}
    per_rt = {}
    for rt in RUNTIMES:
        mine = [r for r in rows if r["runtime"] == rt]
        preds = [v for r in mine for v in r["rows"] if v["variant"] != "base"]
        prev = [r for r in mine if r in changed]
        previous = None
        if prev and len(prev) == len(mine):  # every cell rescored: the same variants under the previous predictor
            previous = _previous_summary(prev, first)
        ablated = [v for r in mine if r.get("ablation") for v in r["ablation"]["rows"] if v["variant"] != "base"]
        without_heavy = (error_summary(ablated) if mine and all((r.get("ablation") or {}).get("version") == ABLATION
                                                                 for r in mine) else None)
        per_rt[rt] = {**error_summary(preds), "previous": previous, "without_heavy": without_heavy, "models": len(mine),
                      "families": len({r["family"] for r in mine}),
                      "measurements": sum(r["measurements"] for r in mine),
                      "mean_table_build_s": round(statistics.fmean(r["table_build_s"] for r in mine), 1) if mine else None,
                      "max_table_build_s": max((r["table_build_s"] for r in mine), default=None)}
    env = environment(TOOLS)
    previous_json = RESULTS / "predictor_fidelity.json"
    if not timed and previous_json.exists():
        env.update(machine=json.loads(previous_json.read_text())["machine"], scored_on=env["machine"])
    out = {"benchmark": "predictor_fidelity", "input": f"1x3x{RES}x{RES}", "threads": THREADS,
           "variants_per_model": VARIANTS, **env, "per_runtime": per_rt, "models": rows, "failed": failed,
           "complete": all((m, rt) in done for m in MODELS for rt in RUNTIMES)}
    atomic_write_json(RESULTS / "predictor_fidelity.json", out)
    metas = [json.loads(t.read_text()).get("meta", {}) for t in sorted(TABLES.glob("*-fp32.json"))]
    lines = ["# Latency predictor fidelity", "",
             f"{'Full' if out['complete'] else 'PARTIAL'} run: {len(rows)} (model, runtime) cells of "
             f"{len(MODELS) * len(RUNTIMES)}. Input 1x3x{RES}x{RES}, fp32, {THREADS} threads, {out['machine']['cpu']} "
             f"({out['machine']['cores']} cores, shared). {VARIANTS} random channel-pruned variants per model "
             f"(torch-pruning, 10-60% per coupled group, round_to = the table's grid: "
             f"{', '.join(f'{rt} {g}' for rt, g in sorted({(r['runtime'], r.get('grid', 8)) for r in rows}))}); "
             "the unpruned model is not scored (calibrated on it).",
             "", "Predictor: conv/linear = axis sweeps + width interaction kappa fitted on diagonal probes; calibration "
             "(overhead, scale) by least squares on the model + 3 random variants"
             + (" + 1 heavily pruned one (50-80% per group)" if any(len(r["calibration"].get("measured_ms", [])) > 4 for r in rows) else "")
             + " (seed 7919, apart from the scored ones); anchors timed twice, faster kept; the calibration models and the scored variants are timed together "
             f"in 5 interleaved rounds (protocol {PROTOCOL}: "
             + ("each model's fastest block median over all block rounds, the models taking turns in blocks of a few "
                "ms within each round" if PROTOCOL >= 4 else
                "the unpruned model's fastest repeat, every other model that times its median ratio to it"
                + (" over block rounds, the models taking turns in blocks of a few ms within each round" if PROTOCOL >= 3
                   else " per round"))
             + ("; cells re-timed on the committed tables, build figures from their first run" if any(r.get("remeasured") for r in rows) else "")
             + "). Kernel timing: " + ", ".join(f"{rt}: {t}" for rt, t in sorted({(r['runtime'], r.get('kernel_timing', 'wall')) for r in rows}))
             + " (wall: the micro-model's wall-clock time minus the runner's call cost; nodes: its profiled node "
             "times without layout conversions, edgeprune.latency.node_timing). Sweep budget per model: "
             f"{sorted({r.get('budget_s') for r in rows if r.get('budget_s')})} s.",
             "", f"Table reading (predictor v{PREDICTOR}): each width's measured line is read as a non-decreasing "
             "staircase (a narrower count timed slower than a wider one takes the wider one's time) and the "
             "width interaction is capped so a kernel is never predicted above either line; no kernel is predicted "
             "cheaper per unit of work than at its anchor; calibration scale within [0.25, 4]"
             + ("; each plan's latency from its kernel sum s through the calibration curve: a least-squares line per s "
                "with the calibration models weighted by exp(-ln(s_i/s)^2 / 2h^2), h = "
                f"{BANDWIDTH} (edgeprune.latency.calibration), made non-decreasing." if PREDICTOR >= 4 else ".")
             + (" predictor v3 read every plan through one line fitted on all calibration models." if PREDICTOR == 4 else "")
             + (" No kernel is predicted below the cheapest time measured for its op (predictor.op_floors), and on "
                "tables that carry weight_ms_per_mb (node-timed ONNX Runtime: "
                + (", ".join(f"{m['weight_ms_per_mb']:.3f}" for m in metas if m.get('weight_ms_per_mb')) or "none")
                + " ms/MB) each conv/linear's weights are priced as read from memory; node-timed ONNX Runtime entries "
                "are less the profiler's per-node cost (" + (", ".join(f"{1000 * m['profiler_node_ms']:.2f}" for m in metas if m.get('profiler_node_ms')) or "none")
                + " us)." if PREDICTOR >= 5 else "")
             + (f" {len(changed)} cells were re-timed under protocol {PROTOCOL} on the committed tables (calibration "
                f"refitted on the new timings); `previous` = the same cells' errors under {since}."
                if changed and since.startswith("timing") else
                f" {len(changed)} cells were rescored with it: the same tables and the same end-to-end timings as their "
                "first scoring (calibration refitted on the recorded timings of the calibration models), new "
                f"predictions only; `previous` = the errors under {since}." if changed else "")
             + (" `one line without the heavy variant`: the same timings, one calibration line fitted on the model and "
                "its 3 mild random variants only (`--ablate`), i.e. without the variant pruned 50-80% per group that "
                "calibration adds for the pruning solver's 2-3x plans."
                if any(s.get("without_heavy") for s in per_rt.values()) else ""),
             "", "| runtime | models | families | predictions | within ±10% | within ±5% | mean abs err | max abs err | "
             "measurements | mean table build (s) | max (s) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rt, s in per_rt.items():
        if s.get("n"):
            lines.append(f"| {rt} | {s['models']} | {s['families']} | {s['n']} | {s['within_10_pct']}% | "
                         f"{s['within_5_pct']}% | {s['mean_abs_pct']}% | {s['max_abs_pct']}% | {s['measurements']} | "
                         f"{s['mean_table_build_s']} | {s['max_table_build_s']} |")
    for label, key in (("previous", "previous"), ("one line without the heavy variant", "without_heavy")):
        for rt, s in per_rt.items():
            p = s.get(key)
            if p and p.get("n"):
                lines.append(f"| {rt}, {label} | | | {p['n']} | {p['within_10_pct']}% | {p['within_5_pct']}% | "
                             f"{p['mean_abs_pct']}% | {p['max_abs_pct']}% | | | |")
    lines += ["", "measurements: kernel timings this run; table points: every point the model's kernels draw on "
              "(families shared with other models included); table build: cumulative over the runs that built "
              "or extended the model's record.", "",
              "| model | runtime | kernels | measurements | table points | table build (s) | base ms | errors of the variants (%) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = next((v["measured_ms"] for v in r["rows"] if v["variant"] == "base"), None)
        errs = ", ".join(f"{v['error_pct']:+.1f}" for v in r["rows"] if v["variant"] != "base")
        f = first.get((r["model"], r["runtime"])) if r in changed else None
        if f:
            errs += " (previous: " + ", ".join(f"{v['error_pct']:+.1f}" for v in f["rows"] if v["variant"] != "base") + ")"
        lines.append(f"| {r['model']} | {r['runtime']} | {r['kernels']} | {r['measurements']} | "
                     f"{r.get('table_points', '-')} | {r['table_build_s']} | {base} | {errs} |")
    for r in failed:
        lines.append(f"\nFAILED {r['model']} / {r['runtime']}: {r['error']}")
    scored = (f" Scored without timing on {out['scored_on']['cpu']}; the timings are from the machine above."
              if out.get("scored_on") and out["scored_on"]["cpu"] != out["machine"]["cpu"] else "")
    lines += ["", f"Generated {out['generated']}.{scored} Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items()), ""]
    atomic_write_text(RESULTS / "predictor_fidelity.md", "\n".join(lines))
    _plot(rows)
    return out


def _plot(rows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(RUNTIMES), figsize=(5 * len(RUNTIMES), 4.5), squeeze=False)
    for ax, rt in zip(axes[0], RUNTIMES):
        pts = [(v["measured_ms"], v["predicted_ms"]) for r in rows if r["runtime"] == rt for v in r["rows"]
               if v["variant"] != "base"]
        if not pts:
            continue
        xs, ys = zip(*pts)
        hi = max(max(xs), max(ys)) * 1.1
        ax.plot([0, hi], [0, hi], "k-", lw=0.8)
        ax.fill_between([0, hi], [0, 0.9 * hi], [0, 1.1 * hi], color="g", alpha=0.12, label="±10%")
        ax.scatter(xs, ys, s=12)
        ax.set(xscale="log", yscale="log", xlabel="measured ms", ylabel="predicted ms", title=rt)
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "predictor_fidelity.png", dpi=110)
    plt.close(fig)


def _grid_arg(text: str) -> int | str:
    if text == "auto":
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a channel count >= 1 or 'auto'")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--budget-s", type=float, default=60.0, help="adaptive-sweep time budget per model (s)")
    ap.add_argument("--fresh", action="store_true",
                    help="forget finished cells and tables first (git keeps the old ones); needed after a format change")
    ap.add_argument("--max-minutes", type=float, default=28.0, help="start no new cell after this")
    ap.add_argument("--report", action="store_true", help="only rebuild the report from the JSONL")
    ap.add_argument("--remeasure", action="store_true",
                    help="re-time cells finished under an older timing protocol on their committed tables")
    ap.add_argument("--rescore", action="store_true",
                    help="score finished cells again with the current predictor (their recorded timings; no timing)")
    ap.add_argument("--ablate", action="store_true",
                    help="score finished cells again with one calibration line fitted without the heavy variant "
                         "(recorded timings; no timing); the report shows it beside the predictor's")
    ap.add_argument("--results", default=None, help="results directory (default bench/results)")
    ap.add_argument("--kernel-timing", default="auto", choices=MODES,
                    help="how new tables time their micro-models (auto: node-timed for ONNX Runtime and ExecuTorch fp32)")
    ap.add_argument("--grid", default="auto", type=_grid_arg,
                    help="channel grid of new tables and round_to of the variants: a width, or auto (probed per runtime)")
    ap.add_argument("--protocol", type=int, default=None,
                    help="with --rescore/--report: the cells timed under this protocol (default: the current one)")
    args = ap.parse_args()
    global KERNEL_TIMING, GRID, PROTOCOL
    if args.protocol is not None:
        if not (args.rescore or args.report):
            ap.error("--protocol selects finished cells for --rescore or --report; new cells are timed under the current one")
        PROTOCOL = args.protocol
    KERNEL_TIMING = args.kernel_timing
    GRID = args.grid
    RUNTIMES[:] = args.runtimes.split(",")  # the report covers the runtimes asked for
    if args.results:
        global RESULTS, JSONL, TABLES
        RESULTS = Path(args.results)
        JSONL, TABLES = RESULTS / "predictor_fidelity.jsonl", RESULTS / "predictor_fidelity_tables"
    os.environ.setdefault("EDGEPRUNE_QUIET", "1")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.report:
        import logging
        import warnings

        warnings.filterwarnings("ignore")
        logging.disable(logging.WARNING)
        start = time.time()
        if args.fresh:
            import shutil

            JSONL.unlink(missing_ok=True)
            for f in TABLES.glob("*.json"):
                f.unlink()
            shutil.rmtree(TABLES / "_unused", ignore_errors=True)
        done = done_rows()
        from edgeprune.errors import EdgepruneError

        if args.rescore:
            for (model, rt), old in done.items():
                if "rows" not in old or old.get("predictor", 1) >= PREDICTOR:
                    continue
                print(f"[{time.strftime('%H:%M:%S')}] rescore {model} / {rt}", file=sys.stderr, flush=True)
                try:
                    row = rescore_cell(old)
                except EdgepruneError as e:  # e.g. its table is missing: the cell keeps its scored row
                    print(f"cannot rescore {model} / {rt}: {e}", file=sys.stderr)
                    continue
                with open(JSONL, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps({"model": model, "runtime": rt, **row["summary"],
                                  "was": {k: old["summary"].get(k) for k in ("within_10_pct", "mean_abs_pct")}}), flush=True)
            done = {}  # nothing is timed in a rescore
        if args.ablate:
            for (model, rt), old in done.items():
                n_cal = len((old.get("calibration") or {}).get("measured_ms", []))
                if "rows" not in old or (old.get("ablation") or {}).get("version") == ABLATION or n_cal <= 4:
                    continue
                print(f"[{time.strftime('%H:%M:%S')}] ablate {model} / {rt}", file=sys.stderr, flush=True)
                try:
                    row = {**old, "ablation": ablate_cell(old)}
                except EdgepruneError as e:  # e.g. its table is missing: the cell keeps its row
                    print(f"cannot ablate {model} / {rt}: {e}", file=sys.stderr)
                    continue
                with open(JSONL, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps({"model": model, "runtime": rt, "as_built": old["summary"],
                                  "one_line_without_heavy": row["ablation"]["summary"]}), flush=True)
            done = {}
        older = done_rows(PROTOCOL - 1) if args.remeasure else {}
        cells = [(m, rt) for rt in args.runtimes.split(",") for m in args.models.split(",")]
        # interleave runtimes so a partial run covers both
        cells = sorted(cells, key=lambda c: (args.models.split(",").index(c[0]), c[1]))
        for model, rt in ([] if args.rescore or args.ablate else cells):
            if (model, rt) in done:
                continue
            if time.time() - start > args.max_minutes * 60:
                print(f"time budget reached; rerun to continue", file=sys.stderr)
                break
            print(f"[{time.strftime('%H:%M:%S')}] {model} / {rt}", file=sys.stderr, flush=True)
            try:
                row = run_cell(model, rt, args.budget_s, VARIANTS, old=older.get((model, rt)))
            except Exception as e:  # keep going; the failure is reported
                row = {"model": model, "family": family(model), "runtime": rt, "protocol": PROTOCOL,
                       "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
                traceback.print_exc()
            with open(JSONL, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            s = row.get("summary", {})
            print(json.dumps({"model": model, "runtime": rt, **s, "measurements": row.get("measurements"),
                              "table_build_s": row.get("table_build_s"), "error": row.get("error")}), flush=True)
    out = write_report(timed=not (args.report or args.rescore or args.ablate))
    print(json.dumps(out["per_runtime"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
