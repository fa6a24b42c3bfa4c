"""`edgeprune vae`: redesign a video-VAE decoder for phones, and distill it."""

from __future__ import annotations

import click

from edgeprune.cli.options import weights_option


@click.group("vae")
def vae_group():
    """Video-VAE decoders that run, fast, on phones (Turbo-VAED-style redesign + distillation)."""


@vae_group.command("redesign")
@click.argument("model", metavar="MODEL")
@click.option("--latent", "latent", required=True, metavar="SHAPE", help="Latent shape B x C x T x H x W, e.g. 1x16x3x32x32.")
@weights_option
@click.option("--preset", type=click.Choice(["small", "medium", "large"]), default=None,
              help="Student size (default small; ignored when --target-latency chooses).")
@click.option("--table", type=click.Path(dir_okay=False), default=None, help="Latency table to predict candidate latencies.")
@click.option("--target-latency", type=float, default=None, metavar="MS",
              help="Latency budget in ms: the largest preset that fits is chosen (measured on this host without --table).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output model directory.")
def redesign_cmd(model, latent, weights, preset, table, target_latency, out):
    """Build a mobile student decoder for the diffusers VAE MODEL; writes an edgeprune model dir."""
    from edgeprune import progress
    from edgeprune.models import parse_inputs
    from edgeprune.vae import redesign_model
    from edgeprune.vae.student import count_params

    (spec,) = parse_inputs(latent)
    with progress.status("redesigning the decoder"):
        r = redesign_model(model, spec.shape, out, weights=weights, preset=preset, table=table, target_latency_ms=target_latency)
    fmt = lambda s: "x".join(map(str, s))  # noqa: E731
    sel = r.selection.get("latency_ms")
    click.echo(
        f"{r.teacher.class_name} -> student '{r.preset}' ({count_params(r.student):,} params, widths "
        f"{list(r.config.widths)}), latent {fmt(r.latent_shape)} -> video {fmt(r.output_shape)}"
        + (f"; measured {sel}" if sel else "")
    )
    click.echo(f"wrote {out}")


@vae_group.command("distill")
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--teacher", required=True, metavar="MODEL", help="The VAE the student was redesigned from.")
@click.option("--teacher-weights", type=click.Path(dir_okay=False), default=None, help="state_dict for the teacher.")
@click.option("--data", "data_spec", required=True, metavar="SPEC", help="skimage, images:PATH or frames:PATH.")
@click.option("--steps", type=int, required=True, help="Total optimizer steps (a resumed run continues to this number).")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in DIR.")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--checkpoint-every", type=int, default=50, show_default=True)
@click.option("--train-clips", type=int, default=256, show_default=True)
@click.option("--heldout-clips", type=int, default=16, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True)
def distill_cmd(directory, teacher, teacher_weights, data_spec, steps, resume, batch_size, lr, checkpoint_every,
                train_clips, heldout_clips, threads):
    """Distill the student in DIR from the teacher on clips of real images; DIR is rewritten with the EMA weights."""
    from edgeprune.vae import distill_model

    r = distill_model(
        directory, teacher, data_spec, steps, teacher_weights=teacher_weights, resume=resume,
        batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every, n_train_clips=train_clips,
        n_heldout_clips=heldout_clips, threads=threads,
    )
    last = r.evals[-1] if r.evals else {}
    click.echo(
        f"step {r.step}: held-out PSNR {last.get('heldout_psnr_db', float('nan')):.2f} dB "
        f"(teacher {r.teacher_psnr_db:.2f} dB), SSIM {last.get('heldout_ssim', float('nan')):.3f}; wrote {directory}"
    )


def register(cli: click.Group) -> None:
    cli.add_command(vae_group)
