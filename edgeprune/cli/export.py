"""`edgeprune export` and `edgeprune verify`: thin click layer over edgeprune.export."""

from __future__ import annotations

import json

import click

from edgeprune.cli.options import input_option, json_option, model_argument, weights_option


@click.command("export")
@model_argument
@input_option()
@click.option("--format", "formats", default="onnx", show_default=True, metavar="LIST",
              help="Comma-separated: onnx, executorch, tflite, coreml, tensorrt, or all.")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "fp16", "int8"]),
              help="fp16: coreml, tflite, tensorrt. int8 needs --calib (or --calib-random).")
@click.option("--calib", default=None, metavar="SPEC",
              help="Calibration data for int8: fashion-mnist, imagefolder:PATH or file.py:factory. With fp32/fp16 "
                   "the same real images are used for the parity check.")
@click.option("--calib-batches", default=8, show_default=True, type=click.IntRange(1), help="Batches used to calibrate.")
@click.option("--calib-random", is_flag=True, help="Allow calibrating int8 on random noise (no real data).")
@weights_option
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1), help="Threads for the parity runs.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@json_option
def export_cmd(model, input_text, formats, precision, calib, calib_batches, calib_random, weights, threads, out_dir, as_json):
    """Export MODEL to edge formats, check parity on this host, write manifest.json."""
    from edgeprune.errors import ExportError
    from edgeprune.export import export_model_spec

    data = export_model_spec(model, input_text=input_text, formats=formats, precision=precision, out_dir=out_dir,
                             weights=weights, calib=calib, calib_batches=calib_batches, calib_random=calib_random,
                             threads=threads)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _print_artifacts(data, out_dir)
    bad = [a for a in data["artifacts"] if a["status"] in ("failed", "parity_failed")
           and a["precision"] == precision and a["format"] in _requested(formats)]
    if bad:
        first = bad[0]
        why = first.get("error") or f"{first['format']} parity: {first.get('parity', {}).get('error') or 'outside tolerance'}"
        if not why.startswith(first["format"]):
            why = f"{first['format']}: {why}"
        if first.get("operator"):
            why += f" [operator {first['operator']}]"
        raise ExportError(f"{len(bad)} of {len(_requested(formats))} formats failed ({', '.join(a['format'] for a in bad)}); "
                          f"{why}; the other artifacts are in {out_dir}")


def _requested(formats: str) -> list[str]:
    from edgeprune.export import parse_formats

    return parse_formats(formats)[0]


def _print_artifacts(data: dict, out_dir: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{data['model']['spec']}  ->  {out_dir}")
    for col in ("format", "precision", "status", "file", "size KB", "parity", "notes"):
        t.add_column(col, justify="right" if col == "size KB" else "left", overflow="fold",
                     no_wrap=col in ("format", "precision", "status", "file"), max_width=48 if col == "notes" else None)
    from edgeprune.export import artifact_bytes

    trt_lines = []
    for a in data["artifacts"]:
        p = a.get("parity") or {}
        if "max_abs_diff" in p:
            parity = f"{'ok' if p['passed'] else 'FAIL'} max {p['max_abs_diff']:.1e} cos {p['cosine']:.5f}"
        elif p:
            parity = ("ok " if p.get("passed") else "FAIL ") + (p.get("method", "") if p.get("passed") else p.get("error") or "; ".join(p.get("problems", [])))
        else:
            parity = "-"
        notes = "; ".join(n for n in a.get("notes", []) if not n.startswith("TensorRT is not available"))
        if a.get("error"):
            notes = (f"[operator {a['operator']}] " if a.get("operator") else "") + a["error"]
        t.add_row(a["format"], a["precision"], a["status"], a.get("file") or "-",
                  f"{artifact_bytes(a) / 1024:,.0f}", parity, notes)
        if a["format"] == "tensorrt" and a["status"] != "failed" and not (a.get("details") or {}).get("engine"):
            sh = next((s["file"] for s in a.get("side_files", []) if s["file"].endswith(".sh")), None)
            if sh:
                trt_lines.append(f"TensorRT is not installed here: build the {a['precision']} engine on the target with "
                                 f"`sh {out_dir}/{sh}` (trtexec)")
    c = Console(width=max(Console().width, 140))
    c.print(t)
    for line in trt_lines:
        c.print(line, highlight=False)


@click.command("verify")
@click.argument("directory", metavar="DIR", type=click.Path())
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1))
@json_option
def verify_cmd(directory, threads, as_json):
    """Re-check sha256 and parity of every artifact in an export DIR; exit 1 on any failure."""
    from edgeprune.errors import VerificationError
    from edgeprune.export import verify_dir

    report = verify_dir(directory, threads=threads)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"verify {directory}")
        for col in ("format", "precision", "file", "status", "detail"):
            t.add_column(col, overflow="fold", no_wrap=col != "detail")
        for r in report.rows:
            t.add_row(r.format, r.precision, r.file or "-", r.status, r.detail)
        Console(width=max(Console().width, 140)).print(t)
    if not report.passed:
        probs = report.problems
        if probs:
            raise VerificationError(f"{len(probs)} artifact(s) failed verification; {probs[0].format} {probs[0].precision}: "
                                    f"{probs[0].status}: {probs[0].detail}")
        raise VerificationError(f"{directory} holds no verified artifact")


def register(cli: click.Group) -> None:
    cli.add_command(export_cmd)
    cli.add_command(verify_cmd)
