"""Video-VAE decoder redesign (Turbo-VAED style): decoders that run, fast, on phones.

Two verbs:
    redesign_model(teacher_spec, latent_shape, out, ...)   build a student decoder, save a model dir
    distill_model(model_dir, teacher_spec, data_spec, ...)  distill it from the teacher, resumable

Lower-level pieces: ``redesign.redesign`` / ``distill.distill`` (in-memory), ``adapters``
(``teacher_decode``, per-family knowledge), ``student`` (the architecture), ``clips`` (real data).
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_NAME = "distill-checkpoint.pt"
HISTORY_NAME = "distill.json"


def _load_teacher(spec: str, weights: str | None = None):
    from edgeprune.models import load_model

    return load_model(spec, weights).module


def redesign_model(
    teacher_spec: str,
    latent_shape: tuple[int, ...],
    out: str | Path,
    *,
    weights: str | None = None,
    preset: str | None = None,
    table: str | None = None,
    target_latency_ms: float | None = None,
):
    """Redesign the decoder of the VAE named by ``teacher_spec``; write an edgeprune model dir at ``out``."""
    from edgeprune.vae.redesign import redesign
    from edgeprune.vae.saved import save_student

    teacher = _load_teacher(teacher_spec, weights)
    result = redesign(teacher, latent_shape, preset=preset, table=table, target_latency_ms=target_latency_ms)
    recipe = result.recipe(teacher_spec)
    save_student(out, result.student, recipe)
    return result


def distill_model(
    model_dir: str | Path,
    teacher_spec: str,
    data_spec: str,
    steps: int,
    *,
    teacher_weights: str | None = None,
    resume: bool = False,
    **options,
):
    """Distill the student in ``model_dir`` from the teacher; rewrite the dir with the EMA weights.

    The checkpoint lives in the model dir (``distill-checkpoint.pt``) and is kept, so a later call
    with ``resume=True`` and more steps continues the same run.
    """
    import shutil

    from edgeprune.errors import EdgepruneError
    from edgeprune.files import read_json
    from edgeprune.models import load_model_dir
    from edgeprune.vae.adapters import adapter_for
    from edgeprune.vae.distill import DistillConfig, distill
    from edgeprune.vae.saved import save_student

    model_dir = Path(model_dir)
    loaded = load_model_dir(model_dir)
    if loaded.metadata.get("kind") != "vae-student":
        raise EdgepruneError(f"{model_dir} is a '{loaded.metadata.get('kind')}' model, not a redesigned decoder; run 'edgeprune vae redesign' first")
    recipe = loaded.metadata["recipe"]
    teacher = _load_teacher(teacher_spec, teacher_weights)
    info = adapter_for(teacher).describe(teacher)
    want = recipe["teacher"]
    if (info.class_name, info.latent_channels) != (want["class_name"], want["latent_channels"]):
        raise EdgepruneError(
            f"the teacher {teacher_spec} ({info.class_name}, {info.latent_channels} latent channels) is not the one "
            f"{model_dir} was redesigned from ({want['class_name']}, {want['latent_channels']} latent channels)"
        )
    if steps < 1:
        raise EdgepruneError("--steps must be at least 1")
    config = DistillConfig(steps=steps, **options)
    ckpt = model_dir / CHECKPOINT_NAME
    result = distill(loaded.module, teacher, data_spec, config, video_shape=recipe["output_shape"], checkpoint=ckpt, resume=resume)
    prev = read_json(model_dir / "model.json", "edgeprune model file")
    recipe = dict(recipe)
    recipe["distill"] = {
        "teacher": teacher_spec, "data": data_spec, "steps": result.step,
        "heldout_sources": result.heldout_sources,
        "final": result.evals[-1] if result.evals else None,
        "teacher_heldout_psnr_db": round(result.teacher_psnr_db, 3),
        "teacher_heldout_ssim": round(result.teacher_ssim, 4),
    }
    del prev

    def keep_checkpoint(tmp: Path):
        if ckpt.exists():
            shutil.copy2(ckpt, tmp / CHECKPOINT_NAME)

    save_student(
        model_dir, result.student, recipe,
        extra={HISTORY_NAME: {"schema": "edgeprune.vae.distill", "version": 1, "config": config.__dict__,
                              "evals": result.evals, "history": result.history}},
        on_complete=keep_checkpoint,
    )
    return result
