"""`edgeprune` command line: a thin click layer over the library.

Each capability registers its commands from its own module in edgeprune/cli/; commands import
the library inside their bodies so `edgeprune --help` stays fast.
"""

from __future__ import annotations

import functools
import logging
import sys

import click

from edgeprune import __version__


class _Group(click.Group):
    """Turns EdgepruneError into a one-line `Error: ...` and exit 1, never a traceback."""

    def invoke(self, ctx):
        from edgeprune.errors import EdgepruneError

        try:
            return super().invoke(ctx)
        except EdgepruneError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="edgeprune")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Make PyTorch models fast on the device they ship to."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbose == 0:
        # third-party converters are chatty; keep the terminal for edgeprune's own lines
        for name in ("torch", "onnxscript", "executorch", "coremltools", "absl", "root", "litert_torch"):
            logging.getLogger(name).setLevel(logging.ERROR)
    # "root" above quiets libraries that log through the root logger; edgeprune's own
    # warnings (a forced foreign table, a missed latency promise) must still reach the user
    logging.getLogger("edgeprune").setLevel(level)


def _register() -> None:
    import importlib

    # one line per capability; each module has register(cli)
    for name in (
        "info",
        "build",
        "export",
        "devices",
        "profile",
        "predict",
        "bench",
        "prune",
        "vae",
    ):
        importlib.import_module(f"edgeprune.cli.{name}").register(cli)


_register()


def main() -> None:
    cli(prog_name="edgeprune")


if __name__ == "__main__":  # pragma: no cover
    main()
