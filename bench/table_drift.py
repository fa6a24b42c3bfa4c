"""How far a latency table from another CPU is off here: prune_pareto's v6 tables (measured before this
VM's CPU changed under the same name, kept in bench/results/prune_pareto_v6_tables/) against its current
ones (bench/results/prune_pareto_tables/), without timing anything.

Per family: each kernel point both tables measured, as the ratio current / v6; and each model
prune_pareto saved (bench/work/prune_pareto/) as the speedup over its dense model that each table
predicts, beside the speedup measured side by side in the current report
(bench/results/prune_pareto.json). The v6 table is read with force=True: refusing it is the point of
the fingerprint's cpu_id, and this bench shows what it would have promised.

    .venv/bin/python bench/table_drift.py        # bench/results/table_drift.{json,md}
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import prune_pareto as pp  # noqa: E402
from bench.results_io import environment, write_results  # noqa: E402
from bench.speedup_fidelity import _pickled_classes, saved_models  # noqa: E402

RESULTS = ROOT / "bench" / "results"
OLD = RESULTS / "prune_pareto_v6_tables"
TOOLS = ("torch", "onnx", "onnxruntime", "torch-pruning")


def point_ratios(old: dict, new: dict) -> list[float]:
    """current / old time of every kernel point both tables hold (a point: its channel counts, ms, runs)."""
    out = []
    for key, entry in new["entries"].items():
        before = {tuple(p[:-2]): p[-2] for p in old["entries"].get(key, {}).get("points", [])}
        out += [p[-2] / before[tuple(p[:-2])] for p in entry["points"] if before.get(tuple(p[:-2]))]
    return out


def family_drift(family: str, measured: dict) -> dict:
    from edgeprune.latency import LatencyModel, load_table

    name = f"{family}-onnxruntime-fp32.json"
    ratios = point_ratios(json.loads((OLD / name).read_text()), json.loads((pp.TABLES / name).read_text()))
    tables = {"v6": load_table(OLD / name, force=True), "current": load_table(pp.TABLES / name)}
    dense = pp.load_module(pp.WORK / family / "dense.pt")
    base = {k: LatencyModel.build(dense, pp.specs(), t).predict() for k, t in tables.items()}
    models = []
    for label, path in saved_models(family):
        m = pp.load_module(path)
        pred = {k: round(base[k] / LatencyModel.build(m, pp.specs(), t).predict(), 3) for k, t in tables.items()}
        got = measured.get((family, label))
        models.append({"model": label, "measured_speedup": got, "v6_speedup": pred["v6"], "current_speedup": pred["current"],
                       "v6_share": round(got / pred["v6"], 3) if got else None,
                       "current_share": round(got / pred["current"], 3) if got else None})
    return {"family": family, "points": len(ratios), "ratio_median": round(statistics.median(ratios), 3),
            "ratio_min": round(min(ratios), 3), "ratio_max": round(max(ratios), 3),
            "v6_cpu_id": tables["v6"].meta["fingerprint"].get("cpu_id"),
            "current_cpu_id": tables["current"].meta["fingerprint"].get("cpu_id"), "models": models}


def main() -> int:
    import os

    os.environ.setdefault("EDGEPRUNE_QUIET", "1")
    _pickled_classes()
    missing = [str(p.relative_to(ROOT)) for f in pp.FAMILIES
               for p in (OLD / f"{f}-onnxruntime-fp32.json", pp.TABLES / f"{f}-onnxruntime-fp32.json", pp.WORK / f / "dense.pt")
               if not p.exists()] + [x for x in ["bench/results/prune_pareto.json"] if not (ROOT / x).exists()]
    if missing:
        sys.exit(f"table_drift: {missing[0]} is missing; run bench/prune_pareto.py first (its models live in bench/work/)")
    report = json.loads((RESULTS / "prune_pareto.json").read_text())
    measured = {(r["family"], f"{r['speedup']:g}x-{r['method']}"): r["measured_speedup"] for r in report["rows"]
                if r.get("speedup")}
    fams = [family_drift(f, measured) for f in pp.FAMILIES]
    out = {**environment(TOOLS), "families": fams}
    lines = ["# Table drift: prune_pareto's v6 tables against its current ones", "",
             f"On {out['machine']['cpu']} ({out['machine']['cpu_id']}). Kernel points: current / v6 time of every point "
             "both tables measured. Models: speedup over the dense model, measured side by side "
             "(bench/results/prune_pareto.json) and predicted by each table; share = measured / predicted "
             "(the promise needs >= 0.90).", ""]
    for f in fams:
        lines += [f"## {f['family']}", "", f"v6 table's cpu_id: {f['v6_cpu_id'] or 'not recorded'}; current: "
                  f"{f['current_cpu_id']}. {f['points']} kernel points, current / v6 median {f['ratio_median']}, "
                  f"range {f['ratio_min']}-{f['ratio_max']}.", "",
                  "| model | measured | v6 table predicts | share | current table predicts | share |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {m['model']} | {m['measured_speedup']}x | {m['v6_speedup']}x | {m['v6_share']} | "
                  f"{m['current_speedup']}x | {m['current_share']} |" for m in f["models"]]
        lines.append("")
    write_results(RESULTS, "table_drift", out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
