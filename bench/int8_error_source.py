"""Where an int8 parity miss comes from: the quantization itself, or a toolchain's lowering.

For models whose int8 cells miss parity in bench/export_coverage.py, this quantizes the same
BatchNorm-recalibrated copy with the same PT2E recipe the ExecuTorch exporter uses (XNNPACK
quantizer: per-channel symmetric weights, per-tensor activations), calibrated on the same noise
batches, and runs the quantized graph *in PyTorch* (quantize/dequantize ops simulated in fp32,
no lowering, no runtime). It is compared with the fp32 model on the same parity inputs and with the
same tolerance (`edgeprune.verify.parity`, int8: rel <= 0.35, cos >= 0.95).

- simulated int8 misses too: the scheme's numerics on this (untrained, noise-calibrated) net are the
  cause; no converter can do better with that recipe. `--calib-batches` shows whether more
  calibration data would change it.
- simulated int8 passes while a runtime's artifact misses: that toolchain's lowering or its own
  quantizer (ONNX Runtime and LiteRT quantize with their own tools) is the cause.

    python bench/int8_error_source.py --models efficientnet_b1,densenet121
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from bench.results_io import environment  # noqa: E402

DEFAULT_MODELS = ["efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "densenet121",
                  "densenet169", "googlenet", "mobilenet_v3_large", "efficientnet_b0"]


def simulate(model: str, calib_batches: list[int]) -> dict:
    import torch
    import torchvision

    import export_coverage as cov
    from edgeprune.exporters.executorch import _quantize_int8
    from edgeprune.models.inputs import InputSpec, example_inputs
    from edgeprune.verify.parity import compare_outputs

    torch.manual_seed(0)
    module = torchvision.models.get_model(model, weights=None).eval()
    reinitialized = cov.reinitialize_zero_weights(module)  # as export_coverage does, in the same RNG order
    shape = (1, 3, 224, 224)
    cov.recalibrate_batchnorm(module, shape)
    specs = (InputSpec(shape),)
    verify = [example_inputs(specs, seed=i) for i in range(cov.VERIFY_SAMPLES)]
    with torch.no_grad():
        ref = [[module(*v).numpy()] for v in verify]
    row = {"model": model, "recipe": "PT2E XNNPACKQuantizer, per-channel symmetric", "runs": [],
           "reinitialized": reinitialized}
    for n in calib_batches:
        t0 = time.perf_counter()
        calib = [example_inputs(specs, seed=1000 + i) for i in range(n)]
        q = _quantize_int8(module, verify[0], calib)
        with torch.no_grad():
            out = [[q(*v).numpy()] for v in verify]
        p = compare_outputs(ref, out, "int8")
        row["runs"].append({"calib_batches": n, "cosine": round(float(p.cosine), 4), "rel_error": round(float(p.rel_error), 4),
                            "passed": bool(p.passed), "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps({"model": model, **row["runs"][-1]}), flush=True)
    return row


def exported_cells() -> dict[str, dict]:
    """Per model, its int8 cells from the committed export coverage results (format -> cosine, passed)."""
    path = RESULTS / "export_coverage.json"
    out: dict[str, dict] = {}
    for r in json.loads(path.read_text()).get("cells", []) if path.exists() else []:
        if r.get("precision") == "int8":
            p = r.get("parity") or {}
            out.setdefault(r["model"], {})[r["format"]] = {"cosine": p.get("cosine"), "passed": p.get("passed")}
    return out


def _batches(text: str) -> list[int]:
    try:
        out = [int(b) for b in text.split(",")]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of positive integers (e.g. 4,32)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--calib-batches", type=_batches, default="4,32", help="comma-separated; 4 is export_coverage's")
    args = ap.parse_args()
    import torchvision

    unknown = sorted(set(args.models.split(",")) - set(torchvision.models.list_models(module=torchvision.models)))
    if unknown:
        ap.error(f"not a torchvision classification model: {', '.join(unknown)} (see torchvision.models.list_models())")
    os.environ.setdefault("EDGEPRUNE_QUIET", "1")
    import warnings

    warnings.filterwarnings("ignore")
    from edgeprune.files import atomic_write_json, atomic_write_text

    path = RESULTS / "int8_error_source.json"
    kept = {r["model"]: r for r in json.loads(path.read_text()).get("rows", [])} if path.exists() else {}
    for m in args.models.split(","):
        kept[m] = simulate(m, args.calib_batches)  # a rerun replaces the model's row; other models' rows stay
    rows = list(kept.values())
    exported = exported_cells()
    for row in rows:
        row["exported"] = exported.get(row["model"], {})
    batches = sorted({x["calib_batches"] for r in rows for x in r["runs"]})
    out = {"benchmark": "int8_error_source", **environment(("torch", "torchvision", "executorch", "torchao")),
           "rows": rows}
    versions = out["versions"]
    atomic_write_json(path, out)
    lines = ["# int8 parity misses: the quantization or the toolchain?", "",
             f"Generated {out['generated']} on {out['machine']['cpu']}; " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
             "", "The BatchNorm-recalibrated model of bench/export_coverage.py, quantized with the ExecuTorch exporter's "
             "PT2E recipe and run in PyTorch (simulated int8: no lowering, no runtime), against fp32 on the same 2 parity "
             "inputs, int8 tolerance cos >= 0.95 and rel <= 0.35. Exported: the committed export-coverage cells' cosine.",
             "", "| model | " + " | ".join(f"simulated, {b} calib batches" for b in batches)
             + " | onnx int8 | executorch int8 | tflite int8 |", "|---|" + "---|" * (len(batches) + 3)]
    for r in rows:
        runs = {x["calib_batches"]: x for x in r["runs"]}
        sims = [f"cos {runs[b]['cosine']} {'ok' if runs[b]['passed'] else 'MISS'}" if b in runs else "-" for b in batches]
        ex = [r["exported"].get(f, {}) for f in ("onnx", "executorch", "tflite")]
        exs = [f"cos {e['cosine']:.4f} {'ok' if e.get('passed') else 'MISS'}" if e.get("cosine") is not None else "-" for e in ex]
        lines.append(f"| {r['model']} | " + " | ".join(sims + exs) + " |")
    lines.append("")
    atomic_write_text(RESULTS / "int8_error_source.md", "\n".join(lines))
    print(json.dumps([{r["model"]: r["runs"]} for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
