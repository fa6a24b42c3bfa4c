"""`edgeprune build CONFIG`: a config-driven pipeline for CI (artifacts, build.json, report)."""

from __future__ import annotations

import json

import click


@click.command("build")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Output directory (default: build-<name>).")
@click.option("--resume", is_flag=True, help="Skip stages already done with the same config.")
@click.option("--print-config", is_flag=True, help="Print the validated config as JSON and exit.")
@click.option("--describe", is_flag=True, help="List stage types with their keys and defaults, and exit.")
def build_cmd(config, out, resume, print_config, describe):
    """Run the stages in CONFIG (TOML) in order; exit 1 naming the stage that failed."""
    from edgeprune.build import load_build_config, run_build

    if describe:
        from edgeprune.build.stages import describe_stages

        click.echo(json.dumps(describe_stages(), indent=2, default=str))
        return
    if not config:
        raise click.UsageError("give a build file, e.g. edgeprune build examples/default.toml")
    cfg = load_build_config(config)
    if print_config:
        click.echo(json.dumps(cfg.to_json(), indent=2))
        return
    result = run_build(cfg, out or f"build-{cfg.name}", resume=resume)
    click.echo(f"report: {result.out / 'report.md'}")
    if result.failed_stage:
        raise click.ClickException(f"stage '{result.failed_stage}' failed: {result.error}")


def register(cli: click.Group) -> None:
    cli.add_command(build_cmd)
