"""Load/save redesigned decoders as edgeprune model directories (kind ``vae-student``)."""

from __future__ import annotations

from pathlib import Path

from edgeprune.errors import ModelSpecError


def build_student(recipe: dict, directory: Path):
    """Rebuild the student architecture from a model dir's recipe (weights are loaded by the caller)."""
    from edgeprune.errors import EdgepruneError
    from edgeprune.vae.student import StudentConfig, StudentDecoder

    if "student" not in recipe:
        raise ModelSpecError(f"{directory}/model.json: the vae-student recipe has no 'student' config")
    try:
        config = StudentConfig.from_json(recipe["student"])
    except (EdgepruneError, TypeError, KeyError) as e:
        raise ModelSpecError(f"{directory}/model.json: bad student config ({e}); regenerate it with 'edgeprune vae redesign'") from None
    return StudentDecoder(config)


def save_student(path, student, recipe: dict, *, extra: dict | None = None, on_complete=None) -> Path:
    from edgeprune.models import InputSpec, save_model_dir

    return save_model_dir(
        path, student, kind="vae-student", recipe=recipe,
        inputs=(InputSpec(tuple(recipe["latent_shape"])),), extra=extra, on_complete=on_complete,
    )
