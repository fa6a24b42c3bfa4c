"""Where the ViT table is optimistic: the 2x plans of bench/prune_vit.py measured at 0.88 of the speedup the
table promised. This splits that plan into its parts and times each part beside the dense model.

The 2x plans kept the embedding (96) and block 0 whole and cut blocks 1-3 to one head and a 24-wide MLP
(block 0's MLP to 64). Variants of the dense ViT, all cut with the same machinery a prune uses
(prunable attention, DepGraph groups, magnitude-ordered channels): heads only, MLPs only, both (the
2x plan's widths), and one head or a 24-wide MLP in every block. Each is predicted by the benchmark's
table (calibration line included) and measured side by side with the dense model (PAIRED_ROUNDS rounds,
each model's fastest block median, as the promise measures). A part whose measured saving falls short
of its predicted saving is where the table's entries are too cheap.

    .venv/bin/python bench/vit_promise_gap.py             # bench/results/vit_promise_gap.{json,md}
    .venv/bin/python bench/vit_promise_gap.py --untrained # bench/results/vit_promise_gap_untrained.{json,md}
    .venv/bin/python bench/vit_promise_gap.py --report    # only rewrite the markdown from the JSON

Latency does not depend on the weights, so `--untrained` asks the same question of a freshly initialized
ViT of the same architecture and a table built for it on this host (bench/results/vit_promise_gap_tables/,
rebuilt when the CPU changes): no 8-epoch dense training first. Only which channels go first (magnitude
order) differs from the trained model, and that does not change a width's latency.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.results_io import environment, heading, table, write_results  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TOOLS = ("torch", "torchvision", "torch-pruning", "onnx", "onnxruntime")
PAIRED_ROUNDS = 7
BLOCKS = 4
ONE_HEAD, MLP_2X, MLP_NARROW = 16 * 3, (64, 24, 24, 24), 24  # qkv rows of one head (head dim 16); the 2x plans' MLPs


def variants() -> dict[str, dict[str, int]]:
    """Kept widths per group root (qkv rows for heads, hidden width for MLPs); groups not named stay whole."""
    qkv = "encoder.layers.encoder_layer_{}.self_attention.qkv"
    mlp = "encoder.layers.encoder_layer_{}.mlp.0"
    heads_2x = {qkv.format(i): ONE_HEAD for i in range(1, BLOCKS)}
    mlps_2x = {mlp.format(i): w for i, w in enumerate(MLP_2X)}
    return {
        "heads as the 2x plan": heads_2x,
        "MLPs as the 2x plan": mlps_2x,
        "the 2x plan (both)": {**heads_2x, **mlps_2x},
        "one head everywhere": {qkv.format(i): ONE_HEAD for i in range(BLOCKS)},
        "24-wide MLPs everywhere": {mlp.format(i): MLP_NARROW for i in range(BLOCKS)},
    }


def main() -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="only rewrite the markdown from the last run's JSON")
    ap.add_argument("--untrained", action="store_true",
                    help="a freshly initialized ViT and its own table on this host (no trained model needed)")
    args = ap.parse_args()
    stem = "vit_promise_gap_untrained" if args.untrained else "vit_promise_gap"
    if args.report:
        last = RESULTS / f"{stem}.json"
        if not last.exists():
            ap.error(f"--report: {last} does not exist yet; run bench/vit_promise_gap.py"
                     f"{' --untrained' if args.untrained else ''} without --report first")
        out = json.loads(last.read_text())
        write_results(RESULTS, stem, out, markdown(out))
        return 0
    from bench import prune_vit as pv
    from bench.prune_pareto import load_module, timer_settings
    from edgeprune.latency import LatencyModel, load_table
    from edgeprune.latency.measure import measure_interleaved
    from edgeprune.models.attention import prunable_attention
    from edgeprune.pruning.groups import build_graph, find_groups, group_channels
    from edgeprune.pruning.importance import score_groups
    from edgeprune.pruning.materialize import apply_plan

    if args.untrained:  # the architecture's own table on this host, with prune_vit's settings
        dense = pv.build().eval()
        table_path = RESULTS / "vit_promise_gap_tables" / "onnxruntime-fp32.json"
        pv.table_for(dense, table_path, {k: pv.CONFIG[k] for k in ("arch", "granularity", "kernel_timing", "cpu_id")})
    else:
        dense_path = pv.WORK / "dense.pt"
        table_path = pv.RESULTS / f"{pv.STEM}_tables" / "onnxruntime-fp32.json"
        if not dense_path.exists() or not table_path.exists():
            print(f"error: {dense_path} or {table_path} is missing; run bench/prune_vit.py first (it trains the dense "
                  f"ViT and builds its table), or use --untrained", file=sys.stderr)
            return 2
        dense = load_module(dense_path)
    tab = load_table(table_path)
    work, _ = prunable_attention(copy.deepcopy(dense).eval(), pv.specs())
    lm = LatencyModel.build(work, pv.specs(), tab)
    dg = build_graph(work, pv.specs())
    groups = find_groups(work, dg, lm, ())
    score_groups(work, dg, groups, "magnitude")
    roots = {g.root for g in groups}
    base_pred, base_kernels = lm.predict(), sum(r["ms"] for r in lm.predict_layers())
    models, rows = [work], []
    for name, plan in variants().items():
        missing = set(plan) - roots
        if missing:
            print(f"error: {sorted(missing)} are not prunable groups of the ViT; bench/prune_vit.py's ARCH changed",
                  file=sys.stderr)
            return 2
        kept = {g.root: plan.get(g.root, g.channels) for g in groups}
        pruned, _ = apply_plan(work, pv.specs(), groups, kept)
        channels = group_channels(groups, kept)
        pred = lm.predict(channels)
        kernels = sum(r["ms"] for r in lm.predict_layers(channels))
        check = LatencyModel.build(pruned, pv.specs(), tab).predict()  # the plan's prediction is the model's
        models.append(pruned)
        rows.append({"variant": name, "plan": plan, "predicted_ms": round(pred, 5), "predicted_on_model_ms": round(check, 5),
                     "kernel_sum_ms": round(kernels, 5), "predicted_speedup": round(base_pred / pred, 3)})
    ms = measure_interleaved(models, pv.specs(), runtime="onnxruntime", precision="fp32", settings=timer_settings(),
                             passes=PAIRED_ROUNDS, statistic=lambda t: t.p50_ms, relative_to_first=True)
    for r, m in zip(rows, ms[1:]):
        r["measured_ms"] = round(m, 5)
        r["measured_speedup"] = round(ms[0] / m, 3)
        r["speedup_share"] = round(r["measured_speedup"] / r["predicted_speedup"], 3)
        # saving as a share of the dense model: what the plan's cut took off, measured against predicted
        r["measured_saving"] = round(1 - m / ms[0], 3)
        r["predicted_saving"] = round(1 - r["predicted_ms"] / base_pred, 3)
        r["measured_saving_ms"] = round(ms[0] - m, 5)
        r["predicted_saving_ms"] = round(base_pred - r["predicted_ms"], 5)
    out = {**environment(TOOLS), "table": str(table_path.relative_to(ROOT)), "rounds": PAIRED_ROUNDS,
           "weights": "freshly initialized" if args.untrained else "trained (bench/prune_vit.py)",
           "dense": {"measured_ms": round(ms[0], 5), "predicted_ms": round(base_pred, 5),
                     "kernel_sum_ms": round(base_kernels, 5)}, "variants": rows}
    write_results(RESULTS, stem, out, markdown(out))
    return 0


def markdown(out: dict) -> list[str]:
    lines = heading("ViT: the table's 2x promise, part by part", out,
                    f"ONNX Runtime fp32, 1 thread, table {out['table']}; {out['rounds']} rounds side by side; "
                    f"ViT weights {out.get('weights', 'trained (bench/prune_vit.py)')}")
    d = out["dense"]
    lines += [f"Dense: measured {d['measured_ms']:.4f} ms, predicted {d['predicted_ms']:.4f} ms (kernel sum "
              f"{d['kernel_sum_ms']:.4f} ms).", ""]
    lines += table(["variant", "predicted speedup", "measured speedup", "measured / predicted", "saving predicted",
                    "saving measured", "saving predicted (ms)", "saving measured (ms)"],
                   [[r["variant"], f"{r['predicted_speedup']:.2f}x", f"{r['measured_speedup']:.2f}x",
                     f"{r['speedup_share']:.3f}", f"{100 * r['predicted_saving']:.1f}%",
                     f"{100 * r['measured_saving']:.1f}%", f"{r['predicted_saving_ms']:.4f}",
                     f"{r['measured_saving_ms']:.4f}"] for r in out["variants"]], right=7)
    parts = {r["variant"]: r for r in out["variants"]}
    both, heads, mlps = (parts[k] for k in ("the 2x plan (both)", "heads as the 2x plan", "MLPs as the 2x plan"))
    over = both["predicted_saving_ms"] - both["measured_saving_ms"]
    lines += ["", f"The 2x plan's parts, heads and MLPs, measured apart save {heads['measured_saving_ms']:.4f} + "
              f"{mlps['measured_saving_ms']:.4f} ms; together {both['measured_saving_ms']:.4f} ms. The table predicts "
              f"{heads['predicted_saving_ms']:.4f} + {mlps['predicted_saving_ms']:.4f} ms apart and "
              f"{both['predicted_saving_ms']:.4f} ms together. Predicted over measured saving (above 0: the "
              f"table promises more than the host gives): heads "
              f"{100 * (heads['predicted_saving_ms'] / heads['measured_saving_ms'] - 1):+.0f}%, MLPs "
              f"{100 * (mlps['predicted_saving_ms'] / mlps['measured_saving_ms'] - 1):+.0f}%, both "
              f"{100 * (both['predicted_saving_ms'] / both['measured_saving_ms'] - 1):+.0f}%. The difference, "
              f"{over:+.4f} ms, is {100 * over / d['measured_ms']:+.1f}% of the dense model's time but "
              f"{100 * over / both['measured_ms']:+.1f}% of the 2x plan's: a cut to half the time doubles a relative error."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
