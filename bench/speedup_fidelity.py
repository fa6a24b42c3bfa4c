"""Does the table promise the speedup the pruned model delivers? Predicted vs measured speedup of the
pruned models bench/prune_pareto.py saved, under its wall-clock tables and under node-timed ones.

The prune's promise (docs/pruning.md) is a measured speedup of at least 90% of the predicted one.
bench/results/prune_pareto.md showed the wall-clock ResNet table predicting 2.67x for a knapsack plan
that measured 2.20x (82%). This bench takes every model prune_pareto saved (bench/work/prune_pareto/,
its five methods at each budget; the plans are not re-solved), builds a fresh node-timed table per
family for the dense model (same grid probe, sweep budget and calibration as prune_pareto's tables),
times every family's models side by side (5 rounds in blocks, each model's fastest block median, as
the promise measures), and reports each model's speedup over its dense model as measured and as
each table predicts it (current predictor, each table's own calibration).

    flock /tmp/edgeprune-bench.lock nice -n 5 .venv/bin/python bench/speedup_fidelity.py
    .venv/bin/python bench/speedup_fidelity.py --report     # rewrite the report from the JSON
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import prune_pareto as pp  # noqa: E402
from bench.results_io import environment  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TABLES = RESULTS / "speedup_fidelity_tables"
OUT = RESULTS / "speedup_fidelity"
PROMISE = 0.90  # measured speedup at least this share of the predicted one
TOOLS = ("torch", "onnx", "onnxruntime", "torch-pruning", "numpy")


def _pickled_classes() -> None:
    """prune_pareto saved whole modules while it ran as __main__: its classes are looked up there."""
    import __main__

    for name in ("MBV2", "InvRes"):
        if not hasattr(__main__, name):
            setattr(__main__, name, getattr(pp, name))


def saved_models(family: str) -> list[tuple[str, Path]]:
    """(label, path) of every pruned model prune_pareto saved for `family`, by budget then method."""
    def key(p: Path):
        target, _, method = p.stem.partition("x-")
        return float(target), method
    return [(p.stem, p) for p in sorted((pp.WORK / family).glob("*x-*.pt"), key=key)]


def node_table(family: str, dense):
    """The family's node-timed table, built for the dense model (resumed if it exists)."""
    from edgeprune.latency import build_table

    rep = build_table(dense, pp.specs(), device="host", runtime="onnxruntime", precision="fp32", threads=pp.THREADS,
                      out=TABLES / f"{family}-onnxruntime-fp32.json", granularity=pp.GRANULARITY,
                      budget_s=pp.TABLE_BUDGET_S, validate=0, model_name=f"speedup_fidelity:{family}",
                      kernel_timing="nodes", progress=False)
    return rep.table


def predicted_speedups(table, dense, models) -> dict[str, float]:
    from edgeprune.latency import LatencyModel

    base = LatencyModel.build(dense, pp.specs(), table).predict()
    return {label: base / LatencyModel.build(m, pp.specs(), table).predict() for label, m in models}


def run_family(family: str) -> dict:
    from edgeprune.latency import load_table
    from edgeprune.latency.measure import measure_interleaved

    _pickled_classes()
    dense = pp.load_module(pp.WORK / family / "dense.pt")
    models = [(label, pp.load_module(path)) for label, path in saved_models(family)]
    t0 = time.perf_counter()
    nodes = node_table(family, dense)
    build_s = time.perf_counter() - t0
    wall = load_table(pp.TABLES / f"{family}-onnxruntime-fp32.json")
    # its calibration refitted by the current predictor on its recorded timings, in memory only
    from edgeprune.latency.builder import refit_calibration
    from edgeprune.latency.kernels import extract_kernels

    refit_calibration(dense, pp.specs(), extract_kernels(dense, pp.specs()), wall,
                      granularity=int(wall.meta.get("granularity") or 8))
    ms = measure_interleaved([dense] + [m for _, m in models], pp.specs(), runtime="onnxruntime", precision="fp32",
                             settings=pp.timer_settings(), passes=pp.PAIRED_ROUNDS, relative_to_first=True)
    by_wall, by_nodes = predicted_speedups(wall, dense, models), predicted_speedups(nodes, dense, models)
    rows = []
    for (label, _), t in zip(models, ms[1:]):
        measured = ms[0] / t
        row = {"model": label, "measured_ms": round(t, 4), "measured_speedup": round(measured, 3)}
        for name, pred in (("wall", by_wall[label]), ("nodes", by_nodes[label])):
            row[f"{name}_speedup"] = round(pred, 3)
            row[f"{name}_share"] = round(measured / pred, 3)  # the promise: >= PROMISE
        rows.append(row)
    return {"family": family, "dense_ms": round(ms[0], 4), "node_table_build_s": round(build_s, 1),
            "node_table": {k: nodes.meta.get(k) for k in ("granularity", "kernel_timing", "profiler_node_ms",
                                                            "weight_ms_per_mb")},
            "wall_table": {k: wall.meta.get(k) for k in ("granularity", "kernel_timing")}, "rows": rows}


def summary(rows: list[dict], name: str) -> dict:
    shares = [r[f"{name}_share"] for r in rows]
    errs = [abs(100 * (1 / s - 1)) for s in shares]  # |predicted / measured - 1| in %
    return {"models": len(rows), "promise_kept": sum(s >= PROMISE for s in shares),
            "within_10_pct": sum(e <= 10 for e in errs), "mean_abs_err_pct": round(statistics.fmean(errs), 2),
            "min_share": round(min(shares), 3), "max_share": round(max(shares), 3)}


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# Speedup fidelity: does the table promise what the pruned model delivers?", "",
             f"ONNX Runtime fp32, {pp.THREADS} thread, input 1x1x28x28, on {m['cpu']} ({m['cores']} cores, shared); "
             f"{res['generated']}. The pruned models bench/prune_pareto.py saved (every method and budget; plans not "
             "re-solved), timed side by side with their dense model (5 rounds in blocks of 12 runs, each model's "
             "fastest block median). Predicted speedup = the dense model's predicted latency over the model's, "
             "by the wall-clock table prune_pareto pruned with (bench/results/prune_pareto_tables/, its calibration "
             "refitted by the current predictor on its recorded timings) and by a fresh "
             "node-timed table of the same grid and sweep budget (bench/results/speedup_fidelity_tables/). "
             f"Share = measured / predicted speedup; the prune's promise is a share of at least {PROMISE:.0%}.", "",
             "| table | models | promise kept | predicted within ±10% | mean abs err | share min-max |",
             "|---|---:|---:|---:|---:|---|"]
    for name in ("wall", "nodes"):
        s = res["summary"][name]
        lines.append(f"| {name} | {s['models']} | {s['promise_kept']} | {s['within_10_pct']} | "
                     f"{s['mean_abs_err_pct']}% | {s['min_share']}-{s['max_share']} |")
    rows = [r for fam in res["families"] for r in fam["rows"]]
    lines += ["", "By method (share = measured / predicted speedup; min-max over both families and all budgets):", "",
              "| method | models | wall table: promise kept | share | node table: promise kept | share |",
              "|---|---:|---:|---|---:|---|"]
    for method in ("knapsack", "regularized", "uniform", "dense-small", "flops"):
        mine = [r for r in rows if r["model"].split("x-", 1)[1] == method]
        if not mine:
            continue
        cells = []
        for name in ("wall", "nodes"):
            sh = [r[f"{name}_share"] for r in mine]
            cells += [str(sum(x >= PROMISE for x in sh)), f"{min(sh):.2f}-{max(sh):.2f}"]
        lines.append(f"| {method} | {len(mine)} | " + " | ".join(cells) + " |")
    lines += ["", "flops: torch-pruning's global magnitude pruning to a FLOPs target leaves layers at widths off the "
              "runtime's channel block (and some at a few channels), whose in-graph layout conversions no kernel entry "
              "carries; the other methods prune on the table's grid."]
    for fam in res["families"]:
        nt = fam["node_table"]
        lines += ["", f"## {fam['family']} (dense {fam['dense_ms']} ms; node-timed table: grid {nt['granularity']}, "
                  f"profiler cost {1000 * (nt.get('profiler_node_ms') or 0):.2f} us/node, weights "
                  f"{nt.get('weight_ms_per_mb') or 0:.3f} ms/MB, built in {fam['node_table_build_s']} s)", "",
                  "| model | measured speedup | wall table | share | node table | share |", "|---|---:|---:|---:|---:|---:|"]
        for r in fam["rows"]:
            lines.append(f"| {r['model']} | {r['measured_speedup']:.2f}x | {r['wall_speedup']:.2f}x | {r['wall_share']:.2f} | "
                         f"{r['nodes_speedup']:.2f}x | {r['nodes_share']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default=",".join(pp.FAMILIES))
    ap.add_argument("--report", action="store_true", help="only rewrite the report from the JSON")
    args = ap.parse_args()
    from edgeprune.files import atomic_write_json, atomic_write_text

    if args.report:
        res = json.loads(OUT.with_suffix(".json").read_text())
    else:
        import logging
        import warnings

        warnings.filterwarnings("ignore")
        logging.disable(logging.WARNING)
        TABLES.mkdir(parents=True, exist_ok=True)
        fams = []
        for f in args.families.split(","):
            if not (pp.WORK / f / "dense.pt").exists():
                print(json.dumps({"family": f, "skipped": "no saved models: run bench/prune_pareto.py first"}))
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {f}", file=sys.stderr, flush=True)
            fams.append(run_family(f))
        rows = [r for fam in fams for r in fam["rows"]]
        res = {"benchmark": "speedup_fidelity", "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               **environment(TOOLS), "families": fams,
               "summary": {name: summary(rows, name) for name in ("wall", "nodes")}}
        atomic_write_json(OUT.with_suffix(".json"), res)
    atomic_write_text(OUT.with_suffix(".md"), markdown(res))
    print(json.dumps(res["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
