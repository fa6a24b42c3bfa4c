"""ViT pruning on the latency table: what attention heads and the embedding dim add to MLP-only pruning.

A torchvision VisionTransformer (4 blocks, 6 heads of 16, embedding 96, MLP 192, 4x4 patches of a
1x28x28 image: 50 tokens) trained on Fashion-MNIST, its latency table built on this host (ONNX Runtime
fp32, 1 thread, node-timed; bench/results/prune_vit_tables/), then pruned with the knapsack to 1.25x, 1.5x
and 2x measured speedup under the same fine-tune budget (EPOCHS passes over TRAIN_SUBSET images, KD from the
dense model), with what it may prune varied:
  sensitivity  heads, MLP hidden widths and the embedding dim, valued by the measured output change of each
               cut (`--value sensitivity`, the default with --data), every candidate width measured (an MLP
               group has 24)
  probes8      the same, measuring at most 8 widths per group and interpolating between (`--probes 8`; the
               default cap, 32, leaves every group here whole): what a cap on the sensitivity's cost does to the plans
  all          the same groups valued by importance shares (`--value importance`; the other variants too)
  no-heads     MLP hidden widths and the embedding dim (`--ignore "*.self_attention.qkv"`)
  mlp-only     MLP hidden widths only: what edgeprune could prune in a ViT before heads/embedding support
  uniform      every group at one kept share (`--balance 1`): heads, MLP and embedding together
The promise (measured speedup beside the dense model, within budget +-3%, >= 90% of predicted) is
edgeprune's own check; at the end every model is timed again side by side in one process.

Resumable: rows are appended to bench/results/prune_vit.jsonl, models kept under bench/work/prune_vit/.

    flock /tmp/edgeprune-bench.lock nice -n 5 .venv/bin/python bench/prune_vit.py
    .venv/bin/python bench/prune_vit.py --report        # re-measure + rewrite the report only
    ... prune_vit.py --seeds 1,2                        # more fine-tune seeds (the report gives mean +- sd)
    .venv/bin/python bench/prune_vit.py --smoke         # a minute-long run of every step into /tmp
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.prune_pareto import load_module, save_module  # noqa: E402  (this benchmark's own model cache, as there)
from bench.results_io import environment, heading, table, write_results  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "prune_vit"
STEM = "prune_vit"
ARCH = {"image_size": 28, "patch_size": 4, "num_layers": 4, "num_heads": 6, "hidden_dim": 96, "mlp_dim": 192}
SPEEDUPS = (1.25, 1.5, 2.0)  # 1.25x: within reach of MLP-only pruning (at most ~1.35x on this table)
VARIANTS = {
    "sensitivity": [],
    "probes8": [],
    "all": [],
    "no-heads": ["*.self_attention.qkv"],
    "mlp-only": ["*.self_attention.qkv", "conv_proj", "*.self_attention.proj", "*.mlp.3"],
    "uniform": [],
}
THREADS = 1
DENSE_EPOCHS = 8
DENSE_LR = 0.05
TRAIN_SUBSET = 30000
EPOCHS = 2.0
LR = 0.02
TABLE_BUDGET_S = 180
KERNEL_TIMING = "nodes"
GRANULARITY = 8
PAIRED_ROUNDS = 5
PROBES = {"sensitivity": 10 ** 6, "probes8": 8}  # sensitivity's rows predate the cap: every width measured
TOOLS = ("torch", "torchvision", "torch-pruning", "onnx", "onnxruntime", "numpy")
_MACHINE = environment(())["machine"]
CONFIG = {"version": 1, "arch": ARCH, "dense_epochs": DENSE_EPOCHS, "train_subset": TRAIN_SUBSET, "epochs": EPOCHS,
          "granularity": GRANULARITY, "kernel_timing": KERNEL_TIMING, "cpu_id": _MACHINE["cpu_id"]}


def build():
    import torch
    import torchvision
    from torch import nn

    torch.manual_seed(0)
    m = torchvision.models.VisionTransformer(num_classes=10, **ARCH)
    m.conv_proj = nn.Conv2d(1, ARCH["hidden_dim"], ARCH["patch_size"], ARCH["patch_size"])  # grey images
    return m


def specs():
    from edgeprune.models.inputs import InputSpec

    return (InputSpec((1, 1, 28, 28)),)


def data(limit):
    from bench.prune_pareto import data as fashion

    return fashion(limit, smoke=RESULTS.parts[1] == "tmp")  # the same loaders and augmentation as prune_pareto


def dense():
    from edgeprune.files import atomic_write_json
    from edgeprune.pruning.finetune import evaluate, finetune

    path, meta = WORK / "dense.pt", WORK / "dense.json"
    cached = json.loads(meta.read_text()) if path.exists() and meta.exists() else {}
    if cached.get("config") == {k: CONFIG[k] for k in ("arch", "dense_epochs")}:
        return load_module(path), cached
    full = data(None)
    m = build()
    t0 = time.time()
    finetune(m, full.train, epochs=DENSE_EPOCHS, lr=DENSE_LR, description="train dense ViT")
    info = {"test_accuracy": evaluate(m, full.val), "config": {k: CONFIG[k] for k in ("arch", "dense_epochs")},
            "train_seconds": round(time.time() - t0, 1)}
    save_module(m, path)
    atomic_write_json(meta, info)
    return m.eval(), info


def table_for(module, path: Path | None = None, config: dict | None = None):
    """The ViT's table at `path` (default: this benchmark's), rebuilt unless its build record holds `config`
    (default: CONFIG; a CPU change is in it)."""
    from edgeprune.errors import TableError
    from edgeprune.files import atomic_write_json
    from edgeprune.latency import build_table, load_table

    path = path or RESULTS / f"{STEM}_tables" / "onnxruntime-fp32.json"
    config = CONFIG if config is None else config
    record_path = path.with_name("build.json")
    try:
        if path.exists() and json.loads(record_path.read_text()).get("config") == config:
            return load_table(path)
    except (TableError, OSError, ValueError) as e:
        print(json.dumps({"rebuilding_table": str(e)}), flush=True)
    path.unlink(missing_ok=True)
    rep = build_table(module, specs(), device="host", runtime="onnxruntime", precision="fp32", threads=THREADS,
                      out=path, granularity=GRANULARITY, budget_s=TABLE_BUDGET_S, model_name="prune_vit",
                      kernel_timing=KERNEL_TIMING, progress=False)
    atomic_write_json(record_path, {**rep.to_json(), "config": config})
    return rep.table


def structure(module) -> dict:
    from edgeprune.models.attention import attention_modules

    heads = [a.num_heads for a in attention_modules(module).values()]
    blocks = [b for b in module.encoder.layers]
    return {"heads": heads, "embed": module.conv_proj.out_channels, "mlp": [b.mlp[0].out_features for b in blocks]}


def model_file(speedup: float, variant: str, seed: int) -> Path:
    return WORK / f"{speedup:g}x-{variant}{f'-seed{seed}' if seed else ''}.pt"


def run(variant: str, speedup: float, seed: int, model, table, bundle) -> dict:
    from edgeprune.errors import PruningError
    from edgeprune.pruning import prune

    t0 = time.time()
    try:
        r = prune(model, specs(), table, method="knapsack", speedup=speedup, data=bundle, epochs=EPOCHS, lr=LR,
                  ignore=VARIANTS[variant], balance=1.0 if variant == "uniform" else 0.0, verify=True, seed=seed,
                  value="sensitivity" if variant in PROBES else "importance", probes=PROBES.get(variant))
    except PruningError as e:  # e.g. MLP widths alone cannot reach the budget: that is the finding
        return {"variant": variant, "speedup": speedup, "seed": seed, "unreachable": str(e), "config": CONFIG}
    save_module(r.module, model_file(speedup, variant, seed))
    return {"variant": variant, "speedup": speedup, "seed": seed, "accuracy": r.accuracy_after, "accuracy_dense": r.accuracy_before,
            "predicted_speedup": round(r.predicted_base_ms / r.predicted_ms, 3), "promise": r.measured,
            "structure": structure(r.module), "seconds": round(time.time() - t0, 1), "value_seconds": round(r.value_seconds, 1),
            "value_probes": r.value_probes, "config": CONFIG}


def rows_done(jsonl: Path) -> dict:
    out = {}
    if jsonl.exists():
        for line in jsonl.read_text().splitlines():
            r = json.loads(line)
            if r.get("config") == CONFIG:
                out[(r["speedup"], r["variant"], r.get("seed", 0))] = r
    return out


def side_by_side(rows: dict) -> dict:
    """Dense and every pruned model timed in turn, in blocks, over PAIRED_ROUNDS rounds: speedups vs dense."""
    from bench.prune_pareto import timer_settings
    from edgeprune.latency.measure import measure_interleaved

    keys = sorted(k for k in rows if "unreachable" not in rows[k])
    mods = [load_module(WORK / "dense.pt")] + [load_module(model_file(*k)) for k in keys]
    settings = timer_settings()
    ms = measure_interleaved(mods, specs(), runtime="onnxruntime", precision="fp32", settings=settings,
                             passes=PAIRED_ROUNDS, statistic=lambda t: t.p50_ms, relative_to_first=True)
    return {"dense_ms": ms[0], **{k: ms[0] / m for k, m in zip(keys, ms[1:])}}


def time_split(model) -> dict:
    """Share of the dense model's kernel time per part of a block, as the table predicts it: what pruning
    one kind of width can save at most."""
    from edgeprune.latency import LatencyModel, load_table

    lm = LatencyModel.build(model, specs(), load_table(RESULTS / f"{STEM}_tables" / "onnxruntime-fp32.json"))
    parts: dict = {}
    for r in lm.predict_layers():
        n = r["name"]
        part = next((p for p, end in (("attention core", ".core"), ("qkv", ".qkv"), ("proj", ".proj")) if n.endswith(end)),
                    "mlp" if ".mlp." in n else "rest")
        parts[part] = parts.get(part, 0.0) + r["ms"]
    total = sum(parts.values())
    return {p: round(v / total, 3) for p, v in parts.items()}


def report(rows: dict, dense_info: dict, model) -> dict:
    timed = side_by_side(rows) if rows else {"dense_ms": None}
    split = time_split(model)
    out = {**environment(TOOLS), "config": CONFIG, "dense": dense_info, "dense_ms": timed["dense_ms"],
           "dense_kernel_time_share": split, "rows": []}
    lines = heading("ViT pruning: heads and embedding dim vs MLP-only", out,
                    f"torchvision ViT {ARCH} on Fashion-MNIST, ONNX Runtime fp32 {THREADS} thread")
    lines += [f"Dense: {100 * dense_info['test_accuracy']:.2f}% test accuracy, {timed['dense_ms']:.3f} ms "
              "(p50, side by side with the pruned models).", "",
              "Dense kernel time by part, as the table predicts it: "
              + ", ".join(f"{p} {100 * v:.0f}%" for p, v in sorted(split.items(), key=lambda kv: -kv[1])) + ".", ""]
    body = []
    for key in sorted(rows, key=lambda k: (k[0], list(VARIANTS).index(k[1]), k[2])):
        r = rows[key]
        if "unreachable" in r:
            out["rows"].append({"budget": key[0], "variant": key[1], "seed": key[2], "unreachable": r["unreachable"]})
            body.append([f"{key[0]:g}x", key[1], key[2], "unreachable", "", "", "", "", "", "", ""])
            continue
        p = r["promise"] or {}
        s = r["structure"]
        row = {"budget": key[0], "variant": key[1], "seed": key[2], "accuracy": r["accuracy"],
               "drop_points": round(100 * (dense_info["test_accuracy"] - r["accuracy"]), 2),
               "speedup_at_prune": p.get("measured_speedup"), "predicted_speedup": r["predicted_speedup"],
               "promise_ok": p.get("ok"), "speedup_side_by_side": round(timed[key], 3), "heads": s["heads"],
               "embed": s["embed"], "mlp": s["mlp"], "seconds": r.get("seconds"),
               "value_seconds": r.get("value_seconds"), "value_probes": r.get("value_probes")}
        out["rows"].append(row)
        body.append([f"{key[0]:g}x", key[1], key[2], f"{100 * r['accuracy']:.2f}%", row["drop_points"],
                     f"{row['speedup_side_by_side']:.2f}x", f"{row['speedup_at_prune']}x / {row['predicted_speedup']}x",
                     "yes" if row["promise_ok"] else "no", "/".join(map(str, s["heads"])), s["embed"],
                     "/".join(map(str, s["mlp"]))])
    lines += ["## Over seeds", ""] + summary(out["rows"]) + ["", "## Every run", ""]
    lines += table(["budget", "prunes", "seed", "accuracy", "drop (pts)", "speedup (re-timed)",
                    "at prune: measured / predicted", "promise", "heads per block", "embed", "MLP hidden"], body, right=0)
    lines += ["", "Heads of 16, 6 per block unpruned; embedding 96; MLP hidden 192. `mlp-only` is what a ViT could lose "
              "before heads and the embedding dim were prunable. `sensitivity` prunes what `all` prunes, valuing each cut by "
              "the measured change of the model's output (`--value sensitivity`, the default with --data); every other "
              "row values it by importance shares (`--value importance`). `probes8` is `sensitivity` measuring at most 8 "
              "widths per group and interpolating the rest (`--probes 8`); the sensitivity rows predate the cap "
              "and measure every width (an MLP group has 24 candidate widths, a head group 6)."]
    lines += [f"- {r['budget']:g}x {r['variant']} seed {r['seed']}: {r['unreachable']}" for r in out["rows"]
              if "unreachable" in r]
    write_results(RESULTS, STEM, out, lines)
    _plot(out)
    return out


def summary(rows: list[dict]) -> list[str]:
    """Mean +- sd of accuracy and mean re-timed speedup per (budget, variant), with the promise count."""
    import statistics

    body = []
    for b in sorted({r["budget"] for r in rows}):
        for v in VARIANTS:
            rs = [r for r in rows if r["budget"] == b and r["variant"] == v]
            ok = [r for r in rs if "unreachable" not in r]
            if not rs:
                continue
            if not ok:
                body.append([f"{b:g}x", v, f"unreachable ({len(rs)} seeds)", "", ""])
                continue
            acc = [100 * r["accuracy"] for r in ok]
            sd = f" +- {statistics.stdev(acc):.2f}" if len(acc) > 1 else ""
            vs = [(r["value_seconds"], r["seconds"]) for r in ok if r.get("value_seconds") and r.get("seconds")]
            cost = (f"{statistics.fmean(a for a, _ in vs):.0f} s of {statistics.fmean(b for _, b in vs):.0f} s"
                    if vs else "")
            body.append([f"{b:g}x", v, f"{statistics.fmean(acc):.2f}%{sd} (n={len(acc)})",
                         f"{statistics.fmean(r['speedup_side_by_side'] for r in ok):.2f}x",
                         f"{sum(bool(r['promise_ok']) for r in ok)}/{len(ok)}", cost])
    return table(["budget", "prunes", "accuracy", "speedup (re-timed, mean)", "promise held",
                  "sensitivity time (mean, of the prune)"], body)


def _plot(out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for v in VARIANTS:
        ok = [r for r in out["rows"] if r["variant"] == v and "unreachable" not in r]
        if not ok:
            continue
        means = []
        for b in sorted({r["budget"] for r in ok}):
            rs = [r for r in ok if r["budget"] == b]
            means.append((sum(r["speedup_side_by_side"] for r in rs) / len(rs), sum(100 * r["accuracy"] for r in rs) / len(rs)))
        line, = ax.plot(*zip(*means), marker="o", label=v)
        ax.scatter([r["speedup_side_by_side"] for r in ok], [100 * r["accuracy"] for r in ok], s=10, alpha=0.4,
                   color=line.get_color())  # each seed
    ax.axhline(100 * out["dense"]["test_accuracy"], color="grey", ls="--", label="dense")
    ax.set_xlabel("measured speedup vs dense (ONNX Runtime, this host)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("ViT on Fashion-MNIST: what each variant may prune")
    ax.legend()
    fig.tight_layout()
    tmp = RESULTS / f".{STEM}.png"
    fig.savefig(tmp, dpi=120, format="png")
    tmp.replace(RESULTS / f"{STEM}.png")


def main() -> None:
    global RESULTS, WORK, DENSE_EPOCHS, TRAIN_SUBSET, EPOCHS, TABLE_BUDGET_S, PAIRED_ROUNDS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="re-measure and rewrite the report only")
    ap.add_argument("--smoke", action="store_true", help="tiny run of every step into /tmp")
    ap.add_argument("--speedups", default=",".join(f"{s:g}" for s in SPEEDUPS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="0", help="fine-tune seeds, e.g. 0,1,2 (the dense model and table are shared)")
    a = ap.parse_args()
    try:
        speedups = [float(s) for s in a.speedups.split(",")]
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError as e:
        ap.error(f"--speedups takes numbers and --seeds whole numbers, comma-separated, e.g. 1.5,2 and 0,1,2 ({e})")
    if any(s < 1 for s in speedups) or any(s < 0 for s in seeds):
        ap.error("--speedups must be >= 1 and --seeds >= 0")
    variants = [v for v in a.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant {bad[0]}; use one of {', '.join(VARIANTS)}")
    if a.smoke:
        RESULTS, WORK = Path("/tmp/edgeprune_prune_vit/results"), Path("/tmp/edgeprune_prune_vit/work")
        DENSE_EPOCHS, TRAIN_SUBSET, EPOCHS, TABLE_BUDGET_S, PAIRED_ROUNDS = 0.05, 640, 0.2, 10, 1
        CONFIG.update(dense_epochs=DENSE_EPOCHS, train_subset=TRAIN_SUBSET, epochs=EPOCHS, smoke=True)
    jsonl = RESULTS / f"{STEM}.jsonl"
    model, dense_info = dense()
    rows = rows_done(jsonl)
    if not a.report:
        tbl = table_for(model)
        bundle = data(TRAIN_SUBSET)
        for seed in seeds:
            for s in speedups:
                for v in variants:
                    if (s, v, seed) in rows:
                        continue
                    try:
                        row = run(v, s, seed, model, tbl, bundle)
                    except Exception as e:  # a failed row is reported, the others still run
                        print(json.dumps({"variant": v, "speedup": s, "seed": seed, "error": f"{type(e).__name__}: {e}"}),
                              flush=True)
                        traceback.print_exc()
                        continue
                    jsonl.parent.mkdir(parents=True, exist_ok=True)
                    with open(jsonl, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    rows[(s, v, seed)] = row
                    print(json.dumps({k: row.get(k) for k in ("variant", "speedup", "seed", "accuracy", "structure",
                                                              "unreachable")}), flush=True)
    report(rows, dense_info, model)


if __name__ == "__main__":
    main()
