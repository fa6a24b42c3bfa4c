"""prune_pareto over several fine-tune seeds: is a method's margin over a baseline larger than its spread?

One prune_pareto run is one fine-tune seed, and the methods' accuracies at equal latency differ by a
few tenths of a point, about what a different seed moves them. This reads the report of the
benchmark's own run (seed 0, bench/results/prune_pareto.json) and of every seed variant run so far
(`prune_pareto.py --seed S`, bench/results/prune_pareto_seedS/prune_pareto.json), and writes per
(family, budget, method) the mean and spread of test accuracy and measured speedup, and per baseline
the equal-latency gain of the best knapsack/regularized model seed by seed (each seed's models measured
side by side in their own run, as prune_pareto's equal-latency table does).

    .venv/bin/python bench/prune_pareto_seeds.py                    # bench/results/prune_pareto_seeds.{json,md}
    .venv/bin/python bench/prune_pareto_seeds.py --train-subset 60000   # the ft60000 variant and its seeds
    .venv/bin/python bench/prune_pareto_seeds.py --train-subset 60000 --epochs 3   # 3 passes over 60k and its seeds
    .venv/bin/python bench/prune_pareto_seeds.py --balance 1            # the knapsack --balance 1 variant and its seeds
    .venv/bin/python bench/prune_pareto_seeds.py --steps 5              # the knapsack 5-step schedule variant and its seeds
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def seed_reports(base: Path) -> dict[int, dict]:
    """{seed: report} for the run in `base` (seed 0) and its `_seedS` variants beside it."""
    out = {}
    if (base / "prune_pareto.json").exists():
        out[0] = json.loads((base / "prune_pareto.json").read_text())
    prefix = (base.name if base != RESULTS else "prune_pareto") + "_seed"
    for d in sorted(RESULTS.glob(prefix + "*")):
        m = re.fullmatch(re.escape(prefix) + r"(\d+)", d.name)
        if m and (d / "prune_pareto.json").exists():
            out[int(m.group(1))] = json.loads((d / "prune_pareto.json").read_text())
    return out


def spread(values: list[float]) -> dict:
    return {"n": len(values), "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values)}


def summarize(reports: dict[int, dict]) -> dict:
    by_row: dict[tuple, dict[int, dict]] = {}
    by_baseline: dict[tuple, dict[int, dict]] = {}
    for seed, rep in reports.items():
        for r in rep["rows"]:
            by_row.setdefault((r["family"], r["speedup"] or 0.0, r["method"]), {})[seed] = r
        for e in rep.get("equal_latency", []):
            by_baseline.setdefault((e["family"], e["target"], e["baseline"]), {})[seed] = e
    rows = []
    for (fam, target, method), per in sorted(by_row.items()):
        acc = spread([100 * r["accuracy"] for r in per.values()])
        spd = spread([r["measured_speedup"] for r in per.values()])
        drops = [r["drop_pts"] for r in per.values() if r.get("drop_pts") is not None]
        rows.append({"family": fam, "target": target or None, "method": method, "seeds": sorted(per),
                     "accuracy_pct": acc, "measured_speedup": spd, "drop_pts": spread(drops) if drops else None})
    gains = []
    for (fam, target, baseline), per in sorted(by_baseline.items()):
        shown = {s: e for s, e in per.items() if e.get("gain_pts") is not None}
        g = {"family": fam, "target": target, "baseline": baseline, "seeds": sorted(per),
             "verdicts": {s: e["verdict"] for s, e in sorted(per.items())},
             "beaten": sum(e["verdict"] == "beaten" for e in per.values())}
        if shown:
            g["gain_pts"] = spread([e["gain_pts"] for e in shown.values()])
        gains.append(g)
    return {"rows": rows, "equal_latency": gains}


def _fmt(s: dict | None, digits: int = 2, unit: str = "") -> str:
    if not s:
        return "-"
    sd = f" ± {s['sd']:.{digits}f}" if s["sd"] is not None else ""
    return f"{s['mean']:.{digits}f}{unit}{sd}"


def markdown(res: dict) -> str:
    seeds = res["seeds"]
    lines = ["# prune_pareto over fine-tune seeds", "",
             f"Seeds: {', '.join(map(str, seeds))} (each a full prune_pareto run: {res['data']}). "
             "Mean ± sample standard deviation over the seeds that ran the row; one seed has no spread.", ""]
    retrained = [r for r in res["rows"] if r["method"] == "dense" and r["accuracy_pct"]["max"] != r["accuracy_pct"]["min"]]
    if retrained:  # bench/work/ is not committed: a seed run on a fresh checkout retrains the dense models
        lines += ["**Not comparable as it stands:** the dense models differ between the runs (" + ", ".join(
            f"{r['family']} {r['accuracy_pct']['min']:.2f}-{r['accuracy_pct']['max']:.2f}%" for r in retrained)
            + "), so the seeds also vary the starting point; rerun every seed on one checkout.", ""]
    lines += [
             "| family | target | method | seeds | test acc (%) | drop (pts) | measured speedup |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in res["rows"]:
        t = f"{r['target']:g}x" if r["target"] else "-"
        lines.append(f"| {r['family']} | {t} | {r['method']} | {len(r['seeds'])} | {_fmt(r['accuracy_pct'])} | "
                     f"{_fmt(r['drop_pts'])} | {_fmt(r['measured_speedup'], 2, 'x')} |")
    if not res["equal_latency"]:  # a variant that ran only our methods: its baselines are the benchmark's own run
        lines += ["", "No baselines in these runs: compare with the benchmark's own seeds (prune_pareto_seeds.md)."]
        return "\n".join(lines) + "\n"
    lines += ["", "Equal measured latency, seed by seed: the best knapsack/regularized model at least as fast as "
              "the baseline, accuracy gain in points (each seed's models measured side by side in its own run).", "",
              "| family | baseline (target) | seeds beaten | gain (pts) | per seed |", "|---|---|---:|---:|---|"]
    for g in res["equal_latency"]:
        per = "; ".join(f"{s}: {v}" for s, v in g["verdicts"].items())
        lines.append(f"| {g['family']} | {g['baseline']} ({g['target']:g}x) | {g['beaten']}/{len(g['seeds'])} | "
                     f"{_fmt(g.get('gain_pts'))} | {per} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-subset", type=int, default=None, metavar="N",
                    help="sum up the prune_pareto_ftN variant and its seeds instead of the benchmark's own run")
    ap.add_argument("--epochs", type=float, default=None, metavar="E",
                    help="sum up the prune_pareto_epE variant (E fine-tune passes) and its seeds")
    ap.add_argument("--lr", type=float, default=None, metavar="X",
                    help="sum up the prune_pareto_lrX variant (peak fine-tune learning rate X) and its seeds")
    ap.add_argument("--balance", type=float, default=0.0, metavar="B",
                    help="sum up the prune_pareto_balB variant (knapsack --balance B) and its seeds")
    ap.add_argument("--steps", type=int, default=None, metavar="N",
                    help="sum up the prune_pareto_stepsN variant (knapsack schedule of N steps) and its seeds")
    args = ap.parse_args()
    if args.epochs is not None and args.epochs <= 0:
        ap.error(f"--epochs {args.epochs:g}: give the fine-tune passes of a prune_pareto --epochs run, e.g. 3")
    if args.lr is not None and args.lr <= 0:
        ap.error(f"--lr {args.lr:g}: give the learning rate of a prune_pareto --lr run, e.g. 0.05")
    if args.steps is not None and args.steps < 1:
        ap.error(f"--steps {args.steps}: give the schedule steps of a prune_pareto --steps run, e.g. 5")
    stem = "prune_pareto" + (f"_ft{args.train_subset}" if args.train_subset else "") + \
        (f"_ep{args.epochs:g}" if args.epochs else "") + (f"_lr{args.lr:g}" if args.lr else "") + \
        (f"_bal{args.balance:g}" if args.balance else "") + (f"_steps{args.steps}" if args.steps else "")
    base = RESULTS / stem if stem != "prune_pareto" else RESULTS
    reports = seed_reports(base)
    if not reports:
        ap.error(f"no prune_pareto report under {base.relative_to(ROOT)}: run bench/prune_pareto.py first")
    from bench.results_io import environment
    from edgeprune.files import atomic_write_json, atomic_write_text

    def settings(report: dict) -> dict:  # the run's config less its seed
        return {k: v for k, v in (report.get("config") or {}).items() if k != "seed"}

    first = reports[min(reports)]
    for s in [s for s, r in reports.items() if settings(r) != settings(first)]:
        print(f"seed {s}: left out, its run used other settings than seed {min(reports)}'s "
              f"(rerun it with the current prune_pareto.py)", file=sys.stderr)
        del reports[s]
    res = {"benchmark": "prune_pareto_seeds", **environment(()), "seeds": sorted(reports), "data": first["data"],
           "configs": {s: r.get("config") for s, r in sorted(reports.items())}, **summarize(reports)}
    stem = "prune_pareto_seeds" if base == RESULTS else f"{base.name}_seeds"
    atomic_write_json(RESULTS / f"{stem}.json", res)
    atomic_write_text(RESULTS / f"{stem}.md", markdown(res))
    print(json.dumps({"seeds": res["seeds"], "equal_latency": res["equal_latency"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
