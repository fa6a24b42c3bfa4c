"""`edgeprune profile`: build (or extend) a device latency table for a model."""

from __future__ import annotations

import json

import click

from edgeprune.cli.options import input_option, json_option, model_argument, weights_option


class _Granularity(click.ParamType):
    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or str(value) == "auto":
            return value
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            self.fail(f"{value!r} is neither a channel count >= 1 nor 'auto'", param, ctx)
        return n


GRANULARITY = _Granularity()


@click.command("profile")
@model_argument
@input_option()
@weights_option
@click.option("--device", default="host", show_default=True, metavar="NAME|PATH",
              help="A device from devices/ or a path to a descriptor .toml.")
@click.option("--runtime", default="onnxruntime", show_default=True,
              type=click.Choice(["onnxruntime", "executorch", "litert", "tensorrt", "coreml"]))
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "fp16", "int8"]))
@click.option("--threads", default=None, type=click.IntRange(1), help="Threads (default: the device's).")
@click.option("--out", "out", default=None, type=click.Path(dir_okay=False),
              help="Table file (default profiles/<device>/<runtime>-<precision>.json); extended if it exists.")
@click.option("--granularity", default="auto", show_default=True, type=GRANULARITY,
              help="Finest channel step the sweeps resolve (pruning's round_to); 'auto' probes the device for the "
                   "width below which narrower layers stop being faster.")
@click.option("--budget", "budget_s", default=600.0, show_default=True, type=click.FloatRange(0),
              help="Seconds of adaptive sweeps (every kernel's own width is always measured).")
@click.option("--validate", default=0, show_default=True, type=click.IntRange(0),
              help="Measure N models end to end (the model + N-1 random pruned variants) vs the prediction.")
@click.option("--force-table", is_flag=True, help="Extend a table measured on another fingerprint anyway.")
@click.option("--kernel-timing", default="auto", show_default=True, type=click.Choice(["auto", "nodes", "wall"]),
              help="How a new table times its micro-models: the runtime profiler's node times without layout "
                   "conversions (nodes; auto picks it for ONNX Runtime and ExecuTorch fp32) or wall clock minus the "
                   "call cost.")
@json_option
def profile_cmd(model, input_text, weights, device, runtime, precision, threads, out, granularity, budget_s, validate,
                force_table, kernel_timing, as_json):
    """Measure MODEL's kernels on DEVICE into a latency table (resumable), then calibrate the predictor."""
    from edgeprune.cli.common import load_with_inputs
    from edgeprune.latency import build_table

    loaded, specs = load_with_inputs(model, input_text, weights)
    report = build_table(loaded.module, specs, device=device, runtime=runtime, precision=precision, threads=threads,
                         out=out, granularity=granularity, validate=validate, force=force_table, budget_s=budget_s,
                         model_name=model, kernel_timing=kernel_timing)
    data = report.to_json()
    if validate:
        from edgeprune.latency.validate import error_summary

        data["validation_summary"] = error_summary([r for r in report.validation if r["variant"] != "base"])
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"table {report.path}: {report.kernels} kernels in {report.families} families; {report.measured} "
               f"measured, {report.reused} already there; {report.seconds:.0f}s"
               + (" (sweep budget reached: re-run to refine)" if report.budget_hit else ""))
    meta = report.table.meta
    if meta.get("kernel_timing") == "nodes":
        extra = []
        if meta.get("profiler_node_ms") is not None:
            extra.append(f"profiler cost {1000 * meta['profiler_node_ms']:.1f} us/node taken off")
        if meta.get("weight_ms_per_mb") is not None:
            extra.append(f"weights read from memory at {meta['weight_ms_per_mb']:.3f} ms/MB")
        click.echo("kernels timed by the runtime's profiler" + (f" ({'; '.join(extra)})" if extra else ""))
    cal = report.calibration
    if cal:
        from edgeprune.latency.calibration import MIN_LOCAL_POINTS

        n = len(cal["measured_ms"])
        click.echo(f"calibration: overhead {cal['overhead_ms']:+.3f} ms, scale {cal['scale']:.3f} over {n} models "
                   f"(measured {', '.join(f'{v:.3f}' for v in cal['measured_ms'])} ms)"
                   + ("; each plan is read through the line fitted nearest its kernel sum" if n >= MIN_LOCAL_POINTS else ""))
    if report.validation:
        _print_validation(report.validation, data["validation_summary"])


def _print_validation(rows, summary) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="predicted vs measured (ms)")
    for col in ("variant", "kept %", "predicted", "measured", "error %"):
        t.add_column(col, justify="left" if col == "variant" else "right")
    for r in rows:
        t.add_row(r["variant"], "100" if r["kept_pct"] is None else f"{r['kept_pct']:.0f}", f"{r['predicted_ms']:.3f}",
                  f"{r['measured_ms']:.3f}", f"{r['error_pct']:+.1f}")
    c = Console()
    c.print(t)
    if summary.get("n"):
        c.print(f"pruned variants: {summary['within_10_pct']}% within ±10%, {summary['within_5_pct']}% within ±5%, "
                f"mean |error| {summary['mean_abs_pct']}%, max {summary['max_abs_pct']}%")


def register(cli: click.Group) -> None:
    cli.add_command(profile_cmd)
