"""`edgeprune bench DIR_OR_ARTIFACT... --device NAME[,NAME...]`: time artifacts on devices."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgeprune.cli.options import json_option


@click.command("bench")
@click.argument("paths", nargs=-1, required=True, metavar="DIR_OR_ARTIFACT...")
@click.option("--device", "devices", required=True, metavar="NAME[,NAME...]",
              help="Device name(s) from `edgeprune devices list` or .toml paths; several run in parallel.")
@click.option("--runs", type=click.IntRange(1), default=None,
              help="Exactly N timed runs (default: repeat until the median is stable, 10..200 runs, <= 5 s).")
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True, help="Untimed runs first.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads (default: the descriptor's).")
@click.option("--runtime", default=None, type=click.Choice(["onnxruntime", "executorch", "litert", "tensorrt", "coreml"]),
              help="Force a runtime instead of choosing by file type.")
@click.option("--per-layer", is_flag=True, help="Also report per-layer times where the runtime gives them.")
@click.option("--top", type=click.IntRange(1), default=5, show_default=True, help="Layers shown per artifact with --per-layer.")
@click.option("--cold-cache", is_flag=True,
              help="With --per-layer: flush the CPU caches before each profiled run (ONNX Runtime, ExecuTorch), to "
                   "see what each layer costs when its weights come from memory.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the results JSON here, updated after every measurement. An unfinished file from an "
                   "interrupted run is resumed: what it already measured is kept, not measured again.")
@click.option("--fresh", is_flag=True, help="With --out: measure everything again instead of resuming.")
@json_option
def bench_cmd(paths, devices, runs, warmup, threads, runtime, per_layer, top, cold_cache, out_file, fresh, as_json):
    """Time exported artifacts (or `edgeprune export` directories) on one or more devices."""
    import threading

    from edgeprune.devices.bench import bench_targets
    from edgeprune.devices.runner import BenchSettings
    from edgeprune.errors import EdgepruneError
    from edgeprune.files import atomic_write_json
    from edgeprune.progress import info, status

    names = [d.strip() for d in devices.split(",") if d.strip()]
    if not names:
        raise EdgepruneError("--device is empty; name at least one device (edgeprune devices list)")
    if cold_cache and not per_layer:
        raise EdgepruneError("--cold-cache changes the per-layer profile only; add --per-layer")
    settings = BenchSettings(threads=threads, warmup=warmup, per_layer=per_layer, cold_cache=cold_cache,
                             **({"min_runs": runs, "max_runs": runs, "max_seconds": 1e9} if runs else {}))
    previous = []
    if out_file and not fresh and Path(out_file).exists():
        from edgeprune.files import read_json

        earlier = read_json(out_file, "bench results file")
        if not earlier.get("complete"):
            previous = earlier.get("results", [])
    done: list = []
    lock = threading.Lock()

    def on_row(row) -> None:
        with lock:
            done.append(row)
            if out_file:
                atomic_write_json(out_file, {"complete": False, "results": [r.to_json() for r in done]})
            if row.result is not None:
                again = " (kept from the earlier run)" if row.reused else ""
                info(f"{row.device}: {row.target.label} p50 {row.result.timing.p50_ms:.3f} ms{again}")
            else:
                info(f"{row.device}: {row.target.label}: {row.error}")

    with status(f"benchmarking on {', '.join(names)}"):
        rows = bench_targets(list(paths), names, settings, runtime=runtime, on_row=on_row, previous=previous)
    if out_file:
        atomic_write_json(out_file, {"complete": True, "results": [r.to_json() for r in rows]})
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
    else:
        _print_rows(rows, per_layer, top)
    failed = [r for r in rows if r.result is None and not (r.error or "").startswith("skipped")]
    if failed and len(failed) == len(rows):
        raise EdgepruneError(failed[0].error or "every bench failed")


def _print_rows(rows, per_layer: bool, top: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    c = Console(width=max(Console().width, 120))
    t = Table("device", "artifact", "runtime", "p50 ms", "p90 ms", "p99 ms", "mean ms", "std ms", "runs", "peak MB", box=None)
    for r in rows:
        if r.result is None:
            t.add_row(r.device, escape(r.target.label), "-", f"[red]{escape(r.error)}[/red]" if not r.error.startswith("skipped")
                      else f"[dim]{escape(r.error)}[/dim]", "", "", "", "", "", "")
            continue
        tm = r.result.timing
        peak = f"{r.result.peak_memory_mb:.0f}" if r.result.peak_memory_mb else "-"
        t.add_row(r.device, escape(r.target.label), r.result.runtime, f"{tm.p50_ms:.3f}", f"{tm.p90_ms:.3f}", f"{tm.p99_ms:.3f}",
                  f"{tm.mean_ms:.3f}", f"{tm.std_ms:.3f}", str(tm.runs), peak)
    c.print(t)
    for r in rows:
        if r.result is None:
            continue
        for w in dict.fromkeys(r.result.warnings):
            c.print(f"[yellow]warning:[/yellow] {r.device} {escape(r.target.label)}: {escape(w)}", highlight=False)
        if per_layer:
            if not r.result.per_layer:
                c.print(f"{r.device} {r.target.label}: no per-layer times from {r.result.runtime} here")
                continue
            lt = Table("layer", "op", "ms", "%", title=f"{r.device} {escape(r.target.label)}: top {top} layers", box=None)
            for layer in sorted(r.result.per_layer, key=lambda x: -x["ms"])[:top]:
                lt.add_row(escape(layer["name"][:60]), layer.get("op", ""), f"{layer['ms']:.4f}", f"{layer.get('percent', 0):.1f}")
            c.print(lt)


def register(cli: click.Group) -> None:
    cli.add_command(bench_cmd)
