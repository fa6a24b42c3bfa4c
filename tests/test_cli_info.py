"""`edgeprune info` and the CLI's error path (one line, exit 1, no traceback)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from edgeprune.cli.main import cli


def test_info_json(tiny_model_file):
    r = CliRunner().invoke(cli, ["info", f"{tiny_model_file}:build", "--input", "1x3x16x16", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    conv = next(layer for layer in data["layers"] if layer["name"] == "conv")
    assert conv["macs"] == 16 * 16 * 8 * 3 * 9  # H*W*Cout*Cin*k*k
    assert data["params"] == sum(layer["params"] for layer in data["layers"])


def test_info_table(tiny_model_file):
    r = CliRunner().invoke(cli, ["info", f"{tiny_model_file}:build", "--input", "1x3x16x16"])
    assert r.exit_code == 0 and "total params" in r.output


def test_user_errors_are_one_line(tiny_model_file):
    for args in (["info", "torchvision:nope", "--input", "1x3x8x8"],
                 ["info", f"{tiny_model_file}:build", "--input", "1x3xq"],
                 ["info", f"{tiny_model_file}:build"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 1, r.output
        assert r.output.startswith("Error: ") and r.output.count("\n") == 1
        assert "Traceback" not in r.output
