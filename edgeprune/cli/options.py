"""Options shared by several commands, defined once."""

from __future__ import annotations

import click

model_argument = click.argument("model", metavar="MODEL")


def input_option(required: bool = False):
    return click.option(
        "--input", "input_text", required=required, metavar="SHAPES",
        help="Input shape(s), e.g. 1x3x224x224 or 1x3x32x32,1x10:int64. Optional for edgeprune model directories.",
    )


weights_option = click.option("--weights", type=click.Path(dir_okay=False), default=None,
                              help="A state_dict checkpoint to load into the model (loaded with weights_only=True).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
