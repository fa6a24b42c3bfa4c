"""`edgeprune devices list` and `edgeprune devices check NAME`."""

from __future__ import annotations

import json

import click

from edgeprune.cli.options import json_option


@click.group("devices")
def devices_group() -> None:
    """Device descriptors (devices/*.toml, $EDGEPRUNE_DEVICES) and their health."""


@devices_group.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Known devices: name, transport, runtimes, threads, clocks pinned."""
    from edgeprune.devices import list_devices

    devs = list_devices()
    if as_json:
        click.echo(json.dumps([{"name": d.name, "transport": d.transport, "runtimes": list(d.runtimes),
                                "default_runtime": d.default_runtime, "threads": d.threads,
                                "clocks_pinned": d.clocks_pinned, "source": d.source} for d in devs], indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("name", "transport", "runtimes", "threads", "clocks pinned", "descriptor", box=None)
    for d in devs:
        runtimes = ", ".join(f"[bold]{r}[/bold]" if r == d.default_runtime else r for r in d.runtimes)
        table.add_row(d.name, d.transport, runtimes, str(d.threads or "-"), "yes" if d.clocks_pinned else "no",
                      escape(d.source))
    Console(width=max(Console().width, 120)).print(table)


@devices_group.command("check")
@click.argument("names", metavar="NAME[,NAME...]")
@json_option
def check_cmd(names: str, as_json: bool) -> None:
    """Reach each device: runtimes and versions there, clocks pinned, thermal state."""
    from edgeprune.devices import load_device
    from edgeprune.devices.check import check_device
    from edgeprune.errors import DeviceError

    from concurrent.futures import ThreadPoolExecutor

    descs = [load_device(n.strip()) for n in names.split(",") if n.strip()]
    with ThreadPoolExecutor(max_workers=max(1, len(descs))) as pool:  # several devices are checked at once
        reports = list(pool.map(check_device, descs))
    if as_json:
        click.echo(json.dumps([r.to_json() for r in reports], indent=2))
    else:
        for r in reports:
            _print_report(r)
    bad = [r for r in reports if not r.ok]
    if bad:
        raise DeviceError(bad[0].problems[0] if bad[0].problems else f"device '{bad[0].device}' failed its check")


def _print_report(r) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    c = Console()
    status = "[green]reachable[/green]" if r.reachable else "[red]unreachable[/red]"
    c.print(f"[bold]{r.device}[/bold] ({r.transport}): {status} in {r.seconds:.1f}s" + (f" - {escape(r.system)}" if r.system else ""))
    if r.runtimes:
        t = Table("runtime", "declared", "on device", "version", box=None)
        for row in r.runtimes:
            t.add_row(row["runtime"], "yes" if row["declared"] else "no",
                      "[green]yes[/green]" if row["available"] else "[red]no[/red]", row["version"] or "-")
        c.print(t)
    if r.reachable:
        pinned = {True: "yes", False: "[yellow]no[/yellow]", None: "unknown (no cpufreq)"}[r.clocks_pinned]
        c.print(f"clocks pinned: {pinned}")
    hot = ", ".join(f"{z['zone']} {z['celsius']:.0f}C" for z in r.thermal[:6] if z.get("celsius") is not None)
    if hot:
        c.print(f"thermal: {hot}")
    for w in r.warnings:
        c.print(f"[yellow]warning:[/yellow] {escape(w)}", highlight=False)
    for p in r.problems:
        c.print(f"[red]problem:[/red] {escape(p)}", highlight=False)


def register(cli: click.Group) -> None:
    cli.add_command(devices_group)
