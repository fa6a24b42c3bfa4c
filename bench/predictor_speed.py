"""Latency predictor query throughput: how many pruned configurations per second the solvers can ask about.

The pruning solvers call `LatencyModel.predict(plan)` (knapsack, measured-fit search) and
`torch_predict` (the latency-regularized trainer) in their inner loops. This script times, side by
side in one run on the tables the fidelity benchmark built (`bench/results/predictor_fidelity_tables`):

* `predict(plan)` on random channel plans (a plan names every prunable layer);
* `torch_predict(plan)` forward + backward (the regularizer's gradient);
* the alternative the predictor saves: materializing the pruned model with torch-pruning and
  extracting its kernels (what answering from the model itself would cost).

It also checks on every plan that the lookup equals the prediction on the materialized model
(the configuration and the model are the same network), and records the largest difference.

    python bench/predictor_speed.py            # prints JSON, writes bench/results/predictor_speed.{json,md}
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.results_io import environment  # noqa: E402
RESULTS = ROOT / "bench" / "results"
TABLE = RESULTS / "predictor_fidelity_tables" / "onnxruntime-fp32.json"
RES = 96
MODELS = ["resnet18", "mobilenet_v2", "mobilenet_v3_large", "squeezenet1_1"]
TOOLS = ("torch", "torchvision", "torch-pruning", "numpy")


def _rate(fn, args, min_s: float) -> tuple[float, int]:
    """Calls per second of fn over the argument list, cycled until min_s has passed (at least one pass)."""
    n, t0 = 0, time.perf_counter()
    while True:
        for a in args:
            fn(a)
        n += len(args)
        dt = time.perf_counter() - t0
        if dt >= min_s:
            return n / dt, n


def run_model(name: str, table, n_plans: int, min_s: float, n_materialize: int) -> dict:
    import numpy as np
    import torch
    import torchvision

    from edgeprune.latency.kernels import extract_kernels
    from edgeprune.latency.predictor import LatencyModel
    from edgeprune.latency.variants import group_ratios, out_channels, prune_variant
    from edgeprune.models.inputs import InputSpec

    specs = (InputSpec((1, 3, RES, RES)),)
    module = torchvision.models.get_model(name, weights=None).eval()
    graph = extract_kernels(module, specs)
    lm = LatencyModel.from_graph(graph, table)
    base = lm.channels()
    rng = np.random.default_rng(0)
    plans = [{k: int(max(1, round(v * rng.uniform(0.3, 1.0)))) for k, v in base.items()} for _ in range(n_plans)]
    predict_qps, predict_n = _rate(lm.predict, plans, min_s)

    tplans = [{k: torch.tensor(float(v), requires_grad=True) for k, v in p.items()} for p in plans[:max(8, n_plans // 16)]]

    def grad(p):
        lm.torch_predict(p).backward()

    grad_qps, grad_n = _rate(grad, tplans, min_s)

    # the same plans answered from materialized models: prune, extract, predict; and the lookup must agree
    prng = random.Random(11)
    times, diffs = [], []
    for _ in range(n_materialize):
        t0 = time.perf_counter()
        ratios = group_ratios(graph, prng)
        variant = prune_variant(module, specs, ratios, list(ratios), 8)
        direct = LatencyModel.from_graph(extract_kernels(variant, specs), table, allow_missing=False)
        direct.overhead_ms, direct.scale, direct.curve = lm.overhead_ms, lm.scale, lm.curve
        from_model = direct.predict()
        times.append(time.perf_counter() - t0)
        plan = {k: v for k, v in out_channels(variant).items() if k in base}
        diffs.append(abs(lm.predict(plan) - from_model) / from_model)
    mat_s = statistics.median(times)
    return {"model": name, "prunable_layers": len(base), "kernels": len(graph.kernels),
            "predict_per_s": round(predict_qps), "predict_calls": predict_n,
            "torch_predict_fwd_bwd_per_s": round(grad_qps), "torch_predict_calls": grad_n,
            "materialize_and_extract_s": round(mat_s, 3), "materialized": n_materialize,
            "speedup_vs_materialize": round(predict_qps * mat_s),
            "max_rel_diff_lookup_vs_materialized": float(f"{max(diffs):.3g}")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--plans", type=int, default=256)
    ap.add_argument("--min-s", type=float, default=2.0, help="time each rate for at least this long")
    ap.add_argument("--materialize", type=int, default=3, help="pruned models built per model for the comparison")
    args = ap.parse_args()

    import torch

    from edgeprune.files import atomic_write_json, atomic_write_text
    from edgeprune.latency.table import load_table

    torch.set_num_threads(1)
    table = load_table(TABLE, force=True)  # only lookups: the fingerprint does not matter here
    rows = []
    for m in args.models.split(","):
        r = run_model(m, table, args.plans, args.min_s, args.materialize)
        rows.append(r)
        print(json.dumps(r), flush=True)
    out = {"schema": "edgeprune.bench.predictor_speed", **environment(TOOLS), "torch_threads": 1,
           "table": str(TABLE.relative_to(ROOT)),
           "input": f"1x3x{RES}x{RES}", "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "predictor_speed.json", out)
    lines = ["# Latency predictor query throughput", "",
             f"Created {out['generated']} by `bench/predictor_speed.py`. Machine: {out['machine']['cpu']} "
             f"({out['machine']['cores']} cores, shared), 1 torch thread. Versions: "
             + ", ".join(f"{k} {v}" for k, v in out["versions"].items()) + ".", "",
             f"Table: `{out['table']}`; input {out['input']}; random plans (every prunable layer at 30-100% of its width).", "",
             "| model | prunable layers | kernels | predict(plan) /s | torch_predict fwd+bwd /s | prune + extract (s) "
             "| lookup vs materialize | max rel. diff, lookup vs materialized model |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['prunable_layers']} | {r['kernels']} | {r['predict_per_s']:,} | "
                     f"{r['torch_predict_fwd_bwd_per_s']:,} | {r['materialize_and_extract_s']} | "
                     f"{r['speedup_vs_materialize']:,}x | {r['max_rel_diff_lookup_vs_materialized']:.1e} |")
    atomic_write_text(RESULTS / "predictor_speed.md", "\n".join(lines) + "\n")
    print(json.dumps({"wrote": str((RESULTS / "predictor_speed.json").relative_to(ROOT))}))


if __name__ == "__main__":
    main()
