"""How steady is a measured speedup on this host? Whole measurements in turn against blocks in turn.

The prune's promise, its measured fit and the Pareto benchmark all read "pruned / unpruned" from
`measure_interleaved(relative_to_first=True)`. This bench measures that ratio REPEATS times per
timing mode, alternating the modes, for a small ResNet (examples/fashion_cnn.FashionCNN at widths
16/32/64, 28x28, the prune_pareto family) and channel-pruned variants of it:

  rounds   each model timed whole (warm-up, runs until the median settles) in turn, 5 rounds;
           the ratio is the median of the 5 per-round ratios (prune protocol 4)
  blocks   the models take turns in blocks of 12 runs (first 2 dropped), 5 rounds; the ratio is
           the median over all block rounds (LocalRunner.bench_blocks, prune protocol 5)

Reported per mode and variant: mean ratio, coefficient of variation and max-min spread over the
repeats, and the seconds one measurement took. Weights are random: latency does not depend on them.

`--model SPEC --input SHAPE [--runtime RT]` measures another model instead, with the 3 random
channel-pruned variants the fidelity bench scores first (10-60% per coupled group, seed 0), into
ratio_noise-<model>-<runtime>.{json,md}. The modes' mean ratios also say whether blocks measure
the same thing as whole measurements (a deployed model runs alone, warm: whole measurements).

    flock /tmp/edgeprune-bench.lock python bench/ratio_noise.py [--repeats 8]
    flock /tmp/edgeprune-bench.lock python bench/ratio_noise.py --model torchvision:mobilenet_v3_small \
        --input 1x3x96x96 --runtime executorch --repeats 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.results_io import environment, heading, table, write_results  # noqa: E402
RESULTS = ROOT / "bench" / "results"
VARIANTS = (0.5, 0.7)   # uniform pruning ratios of the variants (round_to 8)
PASSES = 5


def models():
    import torch

    from edgeprune.latency.variants import out_channels, prune_variant
    from edgeprune.models.inputs import InputSpec
    from examples.fashion_cnn import FashionCNN

    torch.manual_seed(0)
    specs = (InputSpec((1, 1, 28, 28)),)
    base = FashionCNN(widths=(16, 32, 64)).eval()
    prunable = [n for n in out_channels(base) if n != "fc"]
    out = [("dense 16/32/64", base)]
    for r in VARIANTS:  # named by the stage widths torch-pruning left (it skips a layer that would round to 0)
        m = prune_variant(base, specs, {n: r for n in prunable}, prunable, 8)
        ch = out_channels(m)
        out.append(("/".join(str(ch[n]) for n in ("stem.0", "layers.1.conv1", "layers.2.conv1")), m))
    return specs, out


def model_variants(spec: str, shape: str):
    """The model and the first 3 scored variants of bench/predictor_fidelity.py's recipe."""
    import torch

    from edgeprune.latency.kernels import extract_kernels
    from edgeprune.latency.validate import validation_variants
    from edgeprune.models.loading import load_model_with_inputs

    torch.manual_seed(0)
    loaded, specs = load_model_with_inputs(spec, shape)
    module = loaded.module.eval()
    graph = extract_kernels(module, specs)
    out = []
    for name, m, plan in validation_variants(module, specs, graph, n=4, seed=0):
        kept = "" if plan is None else f" ({100 * sum(plan.values()) / sum(_widths(module, plan).values()):.0f}% of channels)"
        out.append(("dense" if name == "base" else name + kept, m))
    return specs, out


def _widths(module, plan):
    from edgeprune.latency.variants import out_channels

    full = out_channels(module)
    return {n: full[n] for n in plan}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=8, help="measurements per timing mode")
    ap.add_argument("--out", default=str(RESULTS), help="results folder")
    ap.add_argument("--model", help="an edgeprune MODEL spec instead of FashionCNN (needs --input)")
    ap.add_argument("--input", help="input shape for --model, e.g. 1x3x96x96")
    ap.add_argument("--runtime", default="onnxruntime", choices=("onnxruntime", "executorch", "litert"))
    args = ap.parse_args()
    if args.repeats < 2:
        ap.error(f"--repeats must be at least 2 (got {args.repeats}): a spread needs two measurements")
    if args.model and not args.input:
        ap.error("--model needs --input (the model's input shape, e.g. 1x3x96x96)")
    os.environ.setdefault("EDGEPRUNE_QUIET", "1")
    import torch
    from rich.progress import Progress

    torch.set_num_threads(1)
    from edgeprune.devices.runner import BenchSettings
    from edgeprune.latency.measure import measure_interleaved
    from edgeprune.pruning.check import SETTINGS

    from edgeprune.errors import EdgepruneError

    try:
        specs, named = model_variants(args.model, args.input) if args.model else models()
    except EdgepruneError as e:  # a bad --model or --input: the loader's one-line message
        ap.error(str(e))
    settings = BenchSettings(threads=1, **SETTINGS)  # the prune check's settings
    ratios = {m: [] for m in ("rounds", "blocks")}
    seconds = {m: [] for m in ratios}
    with Progress(transient=True) as bar:
        task = bar.add_task("ratio measurements", total=2 * args.repeats)
        for _ in range(args.repeats):
            for mode in ratios:
                t0 = time.perf_counter()
                ms = measure_interleaved([m for _, m in named], specs, runtime=args.runtime, settings=settings,
                                         passes=PASSES, statistic=lambda t: t.p50_ms, relative_to_first=True,
                                         alternate=mode == "blocks")
                seconds[mode].append(time.perf_counter() - t0)
                ratios[mode].append([v / ms[0] for v in ms[1:]])
                bar.advance(task)
    rows = []
    for mode, reps in ratios.items():
        for i, (name, _) in enumerate(named[1:]):
            xs = [r[i] for r in reps]
            mean = statistics.fmean(xs)
            rows.append({"mode": mode, "variant": name, "mean_ratio": round(mean, 4),
                         "cv_pct": round(100 * statistics.pstdev(xs) / mean, 2),
                         "spread_pct": round(100 * (max(xs) - min(xs)) / mean, 2), "ratios": [round(x, 4) for x in xs],
                         "seconds_per_measurement": round(statistics.fmean(seconds[mode]), 2)})
    tool = {"onnxruntime": "onnxruntime", "executorch": "executorch", "litert": "ai-edge-litert"}[args.runtime]
    env = environment((tool, "torch", "torch-pruning", "numpy"))
    what = (f"{args.model} at {args.input} and 3 random channel-pruned variants (predictor_fidelity's first 3)"
            if args.model else "FashionCNN 16/32/64 at 28x28 and uniformly pruned variants")
    out = {"benchmark": "ratio_noise", "model": args.model or "examples/fashion_cnn.py:FashionCNN",
           "runtime": args.runtime, "repeats": args.repeats, "passes": PASSES, "threads": 1,
           "input": args.input or "1x1x28x28", "settings": SETTINGS, **env, "rows": rows}
    lines = heading("Measured speedup noise: whole measurements in turn vs blocks in turn", out,
                    f"{args.runtime} {env['versions'][tool]}, 1 thread, {what} (random weights). Each measurement: "
                    f"{PASSES} rounds, ratio to the dense model as the prune's promise reads it; {args.repeats} "
                    "measurements per mode, the modes alternating.")
    lines += table(["mode", "variant", "mean ratio", "CV %", "max-min spread %", "s per measurement"],
                   [[r["mode"], r["variant"], r["mean_ratio"], r["cv_pct"], r["spread_pct"], r["seconds_per_measurement"]]
                    for r in rows], right=4)
    stem = "ratio_noise" if not args.model else \
        f"ratio_noise-{args.model.split(':')[-1].split('/')[-1]}-{args.runtime}"
    write_results(args.out, stem, out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
