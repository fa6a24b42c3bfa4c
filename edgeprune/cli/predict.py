"""`edgeprune predict`: a model's (or a pruned configuration's) latency from a latency table."""

from __future__ import annotations

import json

import click

from edgeprune.cli.options import input_option, json_option, model_argument, weights_option


@click.command("predict")
@model_argument
@input_option()
@weights_option
@click.option("--table", "table_path", required=True, type=click.Path(dir_okay=False),
              help="A table from `edgeprune profile` (profiles/<device>/<runtime>-<precision>.json).")
@click.option("--channels", default=None, metavar="JSON|FILE",
              help='A pruned configuration: {"layer1.0.conv1": 48, ...} inline or in a .json file.')
@click.option("--force-table", is_flag=True, help="Use a table measured on another fingerprint anyway.")
@json_option
def predict_cmd(model, input_text, weights, table_path, channels, force_table, as_json):
    """Predict MODEL's end-to-end latency (and per kernel) on the table's device, runtime and precision."""
    from edgeprune.cli.common import load_with_inputs
    from edgeprune.latency import LatencyModel, load_table

    plan = _parse_channels(channels)
    table = load_table(table_path, force=force_table)
    loaded, specs = load_with_inputs(model, input_text, weights)
    lm = LatencyModel.build(loaded.module, specs, table)
    total = lm.predict(plan)
    layers = lm.predict_layers(plan)
    overhead, scale = lm.calibration_at(plan)
    meta = table.meta
    data = {"latency_ms": round(total, 4), "overhead_ms": round(overhead, 4), "scale": round(scale, 6),
            "calibration": "local" if lm.curve is not None else "line",
            "calibrated": lm.record is not None, "device": meta["device"], "runtime": meta["runtime"],
            "precision": meta["precision"], "threads": meta.get("threads"),
            "layers": [{**r, "ms": round(r["ms"], 5)} for r in layers]}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{model} on {meta['device']} / {meta['runtime']} {meta['precision']}")
    for col in ("kernel", "op", "cin", "cout", "ms", "%"):
        t.add_column(col, justify="left" if col in ("kernel", "op") else "right")
    for r in layers:
        t.add_row(r["name"], r["op"], str(r["cin"]), str(r["cout"]), f"{r['ms']:.4f}", f"{100 * r['ms'] / total:.1f}")
    c = Console()
    c.print(t)
    c.print(f"predicted latency: {total:.3f} ms (overhead {overhead:+.3f} ms, scale {scale:.3f}"
            f"{'' if lm.record else ', model not calibrated: run edgeprune profile for it'})")


def _parse_channels(text: str | None) -> dict | None:
    from pathlib import Path

    from edgeprune.errors import PruningError

    if not text:
        return None
    src = text
    if not text.lstrip().startswith("{"):
        p = Path(text)
        if not p.is_file():
            raise PruningError(f"--channels: {text} is neither a JSON object nor a file; give e.g. "
                               "'{\"layer1.0.conv1\": 48}'")
        src = p.read_text(encoding="utf-8")
    try:
        plan = json.loads(src)
    except json.JSONDecodeError as e:
        raise PruningError(f"--channels is not valid JSON ({e}); give e.g. '{{\"layer1.0.conv1\": 48}}'") from None
    if not isinstance(plan, dict) or not all(isinstance(v, int) and v >= 1 for v in plan.values()):
        raise PruningError("--channels must map layer names to channel counts >= 1, e.g. '{\"layer1.0.conv1\": 48}'")
    return plan


def register(cli: click.Group) -> None:
    cli.add_command(predict_cmd)
