"""`edgeprune info`: parameters, MACs and a per-layer table."""

from __future__ import annotations

import json

import click

from edgeprune.cli.options import input_option, json_option, model_argument, weights_option


@click.command("info")
@model_argument
@input_option()
@weights_option
@json_option
def info_cmd(model, input_text, weights, as_json):
    """Parameters, MACs and per-layer breakdown of MODEL at the given input shape."""
    from edgeprune.cli.common import load_with_inputs
    from edgeprune.models.summary import summarize_model

    loaded, specs = load_with_inputs(model, input_text, weights)
    summary = summarize_model(loaded.module, specs)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{model}  input {','.join(str(s) for s in specs)}")
    for col in ("layer", "type", "params", "MMACs", "output"):
        t.add_column(col, justify="right" if col in ("params", "MMACs") else "left")
    for row in summary["layers"]:
        t.add_row(row["name"], row["type"], f"{row['params']:,}", f"{row['macs'] / 1e6:.2f}", row["output_shape"])
    c = Console()
    c.print(t)
    c.print(f"total params: {summary['params']:,}   MACs: {summary['macs'] / 1e6:.1f} M   layers: {len(summary['layers'])}")


def register(cli: click.Group) -> None:
    cli.add_command(info_cmd)
