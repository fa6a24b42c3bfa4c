"""`edgeprune prune`: channel-prune a model to a latency budget predicted by a device table."""

from __future__ import annotations

import json

import click

from edgeprune.cli.options import input_option, json_option, model_argument, weights_option


@click.command("prune")
@model_argument
@input_option()
@weights_option
@click.option("--table", required=True, type=click.Path(dir_okay=False),
              help="Latency table from `edgeprune profile` (its device/runtime/precision are the target).")
@click.option("--target-latency", "target_latency_ms", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="MS", help="Latency budget in milliseconds.")
@click.option("--speedup", type=click.FloatRange(min=1.0), default=None, metavar="X",
              help="Budget as a speedup over the unpruned model's predicted latency.")
@click.option("--method", default="knapsack", show_default=True, type=click.Choice(["knapsack", "regularized", "precrop"]),
              help="knapsack: importance under a latency budget; regularized: trained soft gates; "
                   "precrop: the knapsack's widths on a freshly initialized model.")
@click.option("--importance", type=click.Choice(["magnitude", "bn", "taylor"]), default=None,
              help="Channel importance (default: taylor with --data, else magnitude).")
@click.option("--value", type=click.Choice(["sensitivity", "importance"]), default=None,
              help="What the knapsack keeps most of: sensitivity = the measured change of the model's output when a "
                   "group alone is cut (default with --data); importance = each group's share of its channel "
                   "importance (no data needed).")
@click.option("--probes", type=click.IntRange(min=2), default=None, metavar="N",
              help="Sensitivity: counts measured per channel group at most (default 32); the counts between are "
                   "interpolated. Fewer measure faster on wide layers.")
@click.option("--balance", default=0.0, show_default=True, type=click.FloatRange(0, 1), metavar="B",
              help="Keep every channel group at least B x as wide as in the uniform plan of the same budget "
                   "(0: the knapsack decides alone; 1: uniform widths, widened where the budget allows).")
@click.option("--data", default=None, metavar="SPEC",
              help="fashion-mnist, imagefolder:PATH or file.py:factory (train/val loaders).")
@click.option("--data-limit", type=click.IntRange(1), default=None, help="Use only the first N training images.")
@click.option("--epochs", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Fine-tuning epochs (0: prune without fine-tuning).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, metavar="LR",
              help="Peak learning rate of the fine-tune (one-cycle SGD; default 0.02).")
@click.option("--ignore", multiple=True, metavar="LAYER",
              help="A layer (qualified name or glob) whose output channels must not be pruned; repeatable.")
@click.option("--no-verify", is_flag=True, help="Do not measure the result on this host's runtime.")
@click.option("--force-table", is_flag=True, help="Use a table measured on another fingerprint anyway.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output model directory.")
@json_option
def prune_cmd(model, input_text, weights, table, target_latency_ms, speedup, method, importance, value, probes, balance, data, data_limit,
              epochs, lr, ignore, no_verify, force_table, out, as_json):
    """Prune MODEL's channels so that it meets a latency budget on the table's device."""
    from edgeprune.errors import PruningError
    from edgeprune.pruning import prune_model_spec

    if (target_latency_ms is None) == (speedup is None):
        raise PruningError("give exactly one of --target-latency MS or --speedup X")
    result = prune_model_spec(model, input_text=input_text, weights=weights, table=table, method=method,
                              target_latency_ms=target_latency_ms, speedup=speedup, data=data, epochs=epochs,
                              ignore=ignore, out=out, importance=importance, verify=not no_verify,
                              force_table=force_table, data_limit=data_limit, balance=balance,
                              value=value, probes=probes, lr=lr)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    m = result.get("measured") or {}
    click.echo(f"{result['out']}: predicted {result['predicted_base_ms']:.3f} -> {result['predicted_ms']:.3f} ms "
               f"({result['predicted_speedup']}x, budget {result['budget_ms']:.3f} ms)")
    if "measured_ms" in m:
        click.echo(f"measured {m['measured_base_ms']:.3f} -> {m['measured_ms']:.3f} ms ({m['measured_speedup']}x)")
    if result.get("accuracy_before") is not None:
        click.echo(f"accuracy {100 * result['accuracy_before']:.2f}% -> {100 * result['accuracy_after']:.2f}%")


def register(cli: click.Group) -> None:
    cli.add_command(prune_cmd)
