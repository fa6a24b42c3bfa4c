"""Export coverage of torchvision's classification models: which formats each model reaches, with parity.

Cells: every builder in `torchvision.models.list_models(module=torchvision.models)`, batch 1,
3x224x224, untrained weights (`weights=None`: pretrained weights cannot be downloaded here), x
{onnx, executorch, tflite, coreml} at fp32 + {onnx, executorch, tflite} at int8. Per cell: exported?,
parity on this host's runtime (Core ML: structural, Linux cannot predict), file size, and host
latency (median ms, 2 threads, ONNX Runtime / ExecuTorch / LiteRT).

int8 is calibrated on 4 batches of seeded Gaussian noise (no ImageNet here), so int8 parity numbers
describe the toolchains on untrained networks, not accuracy.

Protocol 2: int8 cells quantize a copy of the model whose BatchNorm running statistics were
recomputed from noise batches (BN layers in train mode, cumulative average). Untrained torchvision
nets keep the builders' running_var=1, so in eval mode their activations shrink layer after layer
(EfficientNet outputs ~1e-14, MobileNet ~1e-9): below int8 resolution, every int8 artifact returned
zeros and its parity said nothing about the toolchain (protocol 1: 13 of 24 models). Recalibrated,
activations keep unit scale as in a trained net. fp32 cells export the model as built (float32
keeps the range, parity is relative), so their protocol-1 rows stand; int8 rows of protocol 1 are
ignored (they stay in the JSONL's git history).

All-zero conv/linear weights are re-initialized (normal, std 0.02) before export, and the row names
them (`reinitialized`): torchvision's ViTs zero-initialize their head, so an untrained ViT outputs
exactly 0 and every artifact "passed" parity against zeros. The vit_* rows were redone with this on
2026-12-06.

Each model runs in its own subprocess with a timeout; every finished cell is appended to
bench/results/export_coverage.jsonl, so a rerun skips what is done. Models are run smallest first
(parameter count) so a partial run covers as many models as possible.

    nice python bench/export_coverage.py                 # run (resumable), then write the report
    python bench/export_coverage.py --report             # only rebuild the .json/.md from the JSONL
    python bench/export_coverage.py --models resnet18,mobilenet_v2 --timeout 900
    python bench/export_coverage.py --models swin_t --redo coreml/fp32,executorch/int8   # after a fix
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.results_io import environment  # noqa: E402
RESULTS = ROOT / "bench" / "results"
JSONL = RESULTS / "export_coverage.jsonl"
LOGS = ROOT / "bench" / "work" / "export_coverage"  # each worker's stderr, kept for the crash reason
CELLS = [("onnx", "fp32"), ("executorch", "fp32"), ("tflite", "fp32"), ("coreml", "fp32"),
         ("onnx", "int8"), ("executorch", "int8"), ("tflite", "int8")]
INPUT = "1x3x224x224"
THREADS = 2
CALIB_BATCHES = 4
VERIFY_SAMPLES = 2
BN_BATCHES, BN_BATCH_SIZE = 4, 4
PROTOCOL = 2
TOOLS = ("torch", "torchvision", "onnx", "onnxscript", "onnxruntime", "executorch", "torchao", "litert-torch",
         "ai-edge-litert", "ai-edge-quantizer", "coremltools", "numpy")


def all_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def param_counts(names: list[str]) -> dict[str, int]:
    """Parameter counts without allocating weights (models built on the meta device)."""
    import torch
    import torchvision

    out = {}
    for n in names:
        try:
            with torch.device("meta"):
                m = torchvision.models.get_model(n, weights=None)
        except Exception:  # RegNet's builder computes widths with tensors, which meta cannot read back
            m = torchvision.models.get_model(n, weights=None)
        out[n] = sum(p.numel() for p in m.parameters())
    return out


def done_cells() -> dict[tuple[str, str, str], dict]:
    rows = {}
    if JSONL.exists():
        for line in JSONL.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: that cell reruns
            if r["precision"] == "int8" and r.get("protocol", 1) != PROTOCOL:
                continue
            rows[(r["model"], r["format"], r["precision"])] = r
    return rows


def append(row: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(JSONL, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def recalibrate_batchnorm(module, shape: tuple[int, ...]) -> int:
    """Recompute BatchNorm running statistics from seeded noise; returns how many BN layers there are."""
    import torch

    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches below
    module.eval()  # only the BN layers train: no dropout, no stochastic depth, no Inception aux heads
    for bn in bns:
        bn.train()
    with torch.no_grad():
        for i in range(BN_BATCHES):
            module(torch.randn(BN_BATCH_SIZE, *shape[1:], generator=torch.Generator().manual_seed(5000 + i)))
    module.eval()
    return len(bns)


def reinitialize_zero_weights(module) -> list[str]:
    """Give all-zero conv/linear weights small random values; returns their names. torchvision's ViTs
    zero-initialize the classifier head, so an untrained ViT outputs exactly 0 and parity against it is
    vacuous (any artifact returning zeros passes): rows before 2026-12-06 had that for vit_*."""
    import torch
    import torch.nn as nn

    names = []
    for name, m in module.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and not m.weight.detach().any():
            with torch.no_grad():
                nn.init.normal_(m.weight, std=0.02)
            names.append(name)
    return names


def worker(model: str, cells: list[tuple[str, str]]) -> None:
    """Run the given cells of one model in this process (called by the parent in a subprocess)."""
    os.environ.setdefault("EDGEPRUNE_QUIET", "1")
    import torch
    import torchvision

    from edgeprune.devices.fingerprint import cpu_model
    from edgeprune.export import export_model
    from edgeprune.exporters.pipeline import artifact_bytes
    from edgeprune.models import example_inputs, parse_inputs
    from edgeprune.runtimes import FORMAT_RUNTIME, get_runtime
    from edgeprune.runtimes.timing import measure

    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    module = torchvision.models.get_model(model, weights=None).eval()
    reinitialized = reinitialize_zero_weights(module)
    specs = parse_inputs(INPUT)
    params = sum(p.numel() for p in module.parameters())
    quantizable, n_bn = None, 0
    calib = [example_inputs(specs, seed=1000 + i) for i in range(CALIB_BATCHES)]
    verify = [example_inputs(specs, seed=i) for i in range(VERIFY_SAMPLES)]
    for fmt, prec in cells:
        row = {"model": model, "format": fmt, "precision": prec, "params": params, "input": INPUT, "protocol": PROTOCOL,
               "cpu": cpu_model(), "reinitialized": reinitialized}  # latencies compare within one CPU; a resumed run may be on another host
        if prec == "int8":
            if quantizable is None:
                quantizable = copy.deepcopy(module)
                n_bn = recalibrate_batchnorm(quantizable, specs[0].shape)
            row["bn_recalibrated"] = n_bn
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"cov-{model}-") as d:
            try:
                m = export_model(quantizable if prec == "int8" else module, specs, [fmt], prec, d, calibration=calib if prec == "int8" else None,
                                 verify_inputs=verify, model_spec=f"torchvision:{model}", threads=THREADS)
                a = m.artifacts[-1]
                p = a.get("parity") or {}
                row.update(exported=a["status"] != "failed", status=a["status"], size_bytes=artifact_bytes(a) or None,
                           error=a.get("error"), operator=a.get("operator"),
                           parity={k: p.get(k) for k in ("method", "passed", "max_abs_diff", "rel_error", "cosine",
                                                          "top1_agreement", "ref_max_abs", "error", "problems") if k in p},
                           delegation=(a.get("details") or {}).get("delegation"),
                           export_seconds=a.get("export_seconds"))
                runtime = FORMAT_RUNTIME.get(fmt)
                if a["status"] in ("ok", "parity_failed") and runtime and not p.get("error"):
                    sess = get_runtime(runtime).load(Path(d) / a["file"], threads=THREADS)
                    feed = [x.numpy() for x in verify[0]]
                    t = measure(lambda: sess.run(feed), warmup=2, min_runs=5, max_runs=50, max_seconds=4.0)
                    row.update(latency_ms=round(t.p50_ms, 3), latency_runs=t.runs, runtime=runtime, threads=THREADS)
            except Exception as e:  # a bug in the pipeline itself: record it, keep going
                lines = str(e).strip().splitlines()
                row.update(exported=False, status="error", error=f"{type(e).__name__}: {lines[0][:300] if lines else ''}")
        row["cell_seconds"] = round(time.perf_counter() - t0, 1)
        row["finished"] = round(time.time())  # epoch seconds: --redo replaces rows older than its start
        append(row)


def vacuous(r: dict) -> bool:
    """Parity 'passed' against a reference that is exactly zero: it says nothing (see reinitialize_zero_weights)."""
    p = r.get("parity") or {}
    return bool(p.get("passed")) and p.get("ref_max_abs") == 0


def passed(r: dict) -> bool:
    return bool((r.get("parity") or {}).get("passed")) and not vacuous(r)


def report(total_models: list[str]) -> None:
    rows = done_cells()
    models = sorted({m for m, _, _ in rows}, key=lambda m: (next(r["params"] for k, r in rows.items() if k[0] == m and r.get("params")) if any(k[0] == m and r.get("params") for k, r in rows.items()) else 0, m))
    full = [m for m in models if all((m, f, p) in rows for f, p in CELLS)]
    per_cell = {}
    for f, p in CELLS:
        cell_rows = [rows[(m, f, p)] for m in full]
        per_cell[f"{f}/{p}"] = {
            "models": len(cell_rows),
            "exported": sum(1 for r in cell_rows if r.get("exported")),
            "parity_passed": sum(1 for r in cell_rows if passed(r)),
        }
    summary = {
        "schema": "edgeprune.export-coverage", "version": 1, "protocol": PROTOCOL, **environment(TOOLS), "input": INPUT, "threads": THREADS, "weights": "untrained (weights=None); int8 cells: BatchNorm statistics recalibrated on "
                   f"{BN_BATCHES}x{BN_BATCH_SIZE} noise images",
        "int8_calibration": f"{CALIB_BATCHES} batches of seeded Gaussian noise", "parity_samples": VERIFY_SAMPLES,
        "models_total": len(total_models), "models_with_all_cells": len(full), "models_started": len(models),
        "coverage_by_cell": per_cell,
        "cells": [rows[k] for k in sorted(rows)],
    }
    from edgeprune.files import atomic_write_json, atomic_write_text

    atomic_write_json(RESULTS / "export_coverage.json", summary)
    atomic_write_text(RESULTS / "export_coverage.md", markdown(summary, rows, models))


def markdown(s: dict, rows: dict, models: list[str]) -> str:
    mc, versions = s["machine"], {k: v for k, v in s["versions"].items() if v != "not installed"}
    lines = [
        "# Export coverage: torchvision classification models", "",
        (f"**Partial run: {s['models_with_all_cells']} of {s['models_total']} torchvision classification models have all "
         f"{len(CELLS)} cells** ({s['models_started']} started; models run smallest first, so the large ones are the "
         "ones missing)." if s["models_with_all_cells"] < s["models_total"] else
         f"**Full run: all {s['models_total']} torchvision classification models.**")
        + " Regenerate or continue with `python bench/export_coverage.py` (resumable).", "",
        f"Generated {s['generated']} on {mc['cpu']} ({mc['cores']} cores, shared with other jobs), {mc['system']}, "
        f"Python {mc['python']}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", "",
        f"Input {s['input']} (batch 1), untrained weights, latency = median of host runs with {s['threads']} threads "
        "(ONNX Runtime CPU, ExecuTorch+XNNPACK, LiteRT+XNNPACK). Core ML: converted and checked structurally "
        "(prediction needs macOS), no latency. int8 calibrated on noise: parity describes the toolchain on untrained "
        "networks whose BatchNorm statistics were first recomputed from noise (protocol 2; with the builders' "
        "statistics the outputs of 13 of the first 24 models were below int8 resolution). Timings on a shared 2-core VM are noisy; compare within a row.", "",
    ]
    cpus: dict[str, set] = {}
    for (m, _, _), r in rows.items():
        cpus.setdefault(r.get("cpu", "AMD EPYC"), set()).add(m)  # cells from before the field: the AMD host
    if len(cpus) > 1:
        lines += ["Latencies come from more than one host (the run was resumed on another machine): "
                  + "; ".join(f"{', '.join(sorted(ms))} on {c}" if len(ms) <= 8 else f"{len(ms)} models on {c}"
                              for c, ms in sorted(cpus.items(), key=lambda kv: len(kv[1]))) + ".", ""]
    lines += [
        "## Coverage per cell (models with all cells run)", "",
        "| format | precision | exported | parity passed |", "|---|---|---|---|",
    ]
    for k, v in s["coverage_by_cell"].items():
        f, p = k.split("/")
        lines.append(f"| {f} | {p} | {v['exported']}/{v['models']} | {v['parity_passed']}/{v['models']} |")
    lines += ["", "## Per model", "",
              "Cell: `ok` parity passed, `PARITY` exported but outside tolerance, `ZERO-REF` the reference output was all "
              "zeros (parity says nothing), `FAIL` not exported, `-` not run; "
              "then size (MB) and median latency (ms).", "",
              "| model | params (M) | " + " | ".join(f"{f} {p}" for f, p in CELLS) + " |",
              "|---|---|" + "---|" * len(CELLS)]
    for m in models:
        params = next((r.get("params") for k, r in rows.items() if k[0] == m and r.get("params")), 0) or 0
        cells = []
        for f, p in CELLS:
            r = rows.get((m, f, p))
            if r is None:
                cells.append("-")
                continue
            tag = ("ZERO-REF" if vacuous(r) else "ok" if passed(r) else "PARITY" if r.get("exported") else "FAIL")
            if r.get("status") in ("timeout", "crashed"):
                tag = r["status"].upper()
            extra = []
            if r.get("size_bytes"):
                extra.append(f"{r['size_bytes'] / 1e6:.1f} MB")
            if r.get("latency_ms") is not None:
                extra.append(f"{r['latency_ms']:.1f} ms")
            cells.append(tag + (" " + ", ".join(extra) if extra else ""))
        lines.append(f"| {m} | {params / 1e6:.1f} | " + " | ".join(cells) + " |")
    fails = [r for k, r in sorted(rows.items()) if not r.get("exported") or not passed(r)]
    simulated = simulated_int8()
    lines += ["", "## Failures and parity misses (format, operator, first line of the error)", ""]
    if not fails:
        lines.append("None.")
    for r in fails:
        p = r.get("parity") or {}
        if r.get("status") in ("timeout", "crashed", "not_run"):
            why = r.get("error")
        elif vacuous(r):
            why = ("the untrained model outputs exactly 0 (zero-initialized head), so parity against it says nothing; "
                   "redo the row: the benchmark now re-initializes all-zero weights")
        elif not r.get("exported"):
            why = f"export failed, operator `{r.get('operator') or '?'}`: {r.get('error')}"
        else:
            why = (f"parity outside tolerance: {p.get('error') or ''} rel {p.get('rel_error')}, cos {p.get('cosine')}, "
                   f"top-1 {p.get('top1_agreement')}, max abs diff {p.get('max_abs_diff')}"
                   + (f" vs reference max abs {p['ref_max_abs']:.2g}" if p.get("ref_max_abs") is not None else ""))
        ref_max = p.get("ref_max_abs")
        if ref_max is None and p.get("rel_error") == 1.0:
            ref_max = p.get("max_abs_diff")  # the artifact returned zeros: the diff is the reference itself
        if r.get("exported") and r["precision"] == "int8" and ref_max is not None and ref_max < 1e-6:
            why += (f" — the untrained model's outputs (max abs {ref_max:.1g}) are below int8 resolution: PT2E "
                    "observers clamp the scale to >= float32 eps (1.2e-7), so the int8 output is all zeros")
        sim = simulated.get(r["model"]) if r.get("exported") and r["precision"] == "int8" else None
        if sim:
            verdict = ("misses too: the recipe's int8 numerics on this net, not this toolchain's lowering"
                       if not sim["passed"] else "passes: this toolchain's own quantizer or lowering")
            why += (f" — the same calibration quantized with the ExecuTorch exporter's PT2E recipe and run in "
                    f"PyTorch (no lowering) gives cos {sim['cosine']}, so it {verdict} (bench/results/int8_error_source.md)")
        lines.append(f"- **{r['model']}** {r['format']} {r['precision']}: {why}")
    return "\n".join(lines) + "\n"


def simulated_int8() -> dict[str, dict]:
    """Per model, the PyTorch-simulated int8 parity at export_coverage's calibration (4 batches), from
    bench/int8_error_source.py's results when present."""
    path = RESULTS / "int8_error_source.json"
    if not path.exists():
        return {}
    out = {}
    for r in json.loads(path.read_text()).get("rows", []):
        run = next((x for x in r.get("runs", []) if x.get("calib_batches") == CALIB_BATCHES), None)
        if run:
            out[r["model"]] = run
    return out


def crash_reason(returncode: int, log: Path) -> str:
    """Why a worker process died, in one line: the signal (SIGKILL here is nearly always the kernel's
    out-of-memory killer) or the exit code, plus the last line it wrote to stderr."""
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        why = f"worker killed by {sig}" + (" (the kernel's out-of-memory killer, most likely)" if sig == "SIGKILL" else "")
    else:
        why = f"worker exited with code {returncode}"
    tail = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()] if log.exists() else []
    return why + (f"; last stderr line: {tail[-1][:300]}" if tail else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated subset")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per model (all its cells)")
    ap.add_argument("--report", action="store_true", help="only rebuild the report from the JSONL")
    ap.add_argument("--redo", help="cells to run again for --models even if done, e.g. coreml/fp32,tflite/int8 "
                    "(the newer row replaces the older one in the report)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--cells", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, [tuple(c.split("/")) for c in args.cells.split(",")])
        return
    names = all_models()
    if args.report:
        report(names)
        return
    chosen = args.models.split(",") if args.models else names
    sizes = param_counts(chosen)
    order = sorted(chosen, key=lambda n: (sizes[n], n))
    redo = {tuple(c.split("/")) for c in args.redo.split(",")} if args.redo else set()
    if redo - set(CELLS):
        ap.error(f"--redo: unknown cells {sorted(redo - set(CELLS))}; cells are " + ",".join(f"{f}/{p}" for f, p in CELLS))
    if redo and not args.models:
        ap.error("--redo needs --models")
    started = time.time()

    def left_of(name: str, cells) -> list:  # cells of `name` with no row yet (a --redo cell: none since the start)
        done = {k for k, r in done_cells().items() if not (k[1:] in redo and r.get("finished", 0) < started)}
        return [c for c in cells if (name, *c) not in done]

    def unfinished(name: str, cell, status: str, error: str) -> None:
        append({"model": name, "format": cell[0], "precision": cell[1], "params": sizes[name], "input": INPUT,
                "protocol": PROTOCOL, "exported": False, "finished": round(time.time()), "status": status,
                "error": error})

    for name in order:
        todo = left_of(name, CELLS)
        if not todo:
            continue
        print(f"[{time.strftime('%H:%M:%S')}] {name} ({sizes[name] / 1e6:.1f} M params): {len(todo)} cells", flush=True)
        deadline = time.time() + args.timeout
        while todo and time.time() < deadline:  # a crashed worker loses one cell; the rest get a fresh process
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
                   "--cells", ",".join(f"{f}/{p}" for f, p in todo)]
            log = LOGS / f"{name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(log, "w") as err:
                    rc = subprocess.run(cmd, cwd=ROOT, timeout=max(1, deadline - time.time()),
                                        stdout=subprocess.DEVNULL, stderr=err).returncode
            except subprocess.TimeoutExpired:
                rc = None  # subprocess.run kills the child on timeout
            left = left_of(name, todo)
            if left and rc is not None:  # the worker died during left[0]: say how, then go on without that cell
                unfinished(name, left[0], "crashed", crash_reason(rc, log))
                left = left[1:]
            todo = left
        for i, cell in enumerate(todo):  # the first one was running when time ran out
            if i == 0:
                unfinished(name, cell, "timeout", f"model's {args.timeout}s budget ran out during this cell")
            else:
                unfinished(name, cell, "not_run", "not run: an earlier cell of this model used up its time budget")
        report(names)
    report(names)


if __name__ == "__main__":
    main()
