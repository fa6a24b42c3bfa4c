"""redesign: read a teacher VAE decoder, build a mobile-friendly student decoder for it."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from enum import Enum

import torch

from edgeprune.errors import EdgepruneError, InternalError
from edgeprune.vae.adapters import TeacherInfo, adapter_for, check_latent_shape
from edgeprune.vae.student import StudentConfig, StudentDecoder, count_params, out_frames

log = logging.getLogger(__name__)


class Preset(str, Enum):
    """Documented student sizes: a width multiplier on the teacher's stage widths and block counts.

    small: 0.5x widths, 2 separable blocks in the low-resolution stages, 1 conv block elsewhere.
    medium: 0.75x widths, 2 / 1 blocks.
    large: 1.0x widths, 3 / 1 blocks.
    """

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


_PRESETS = {
    Preset.SMALL: (0.5, 2, 1),
    Preset.MEDIUM: (0.75, 2, 1),
    Preset.LARGE: (1.0, 3, 1),
}


@dataclass(frozen=True)
class RedesignResult:
    student: StudentDecoder
    config: StudentConfig
    teacher: TeacherInfo
    latent_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    preset: str
    selection: dict = field(default_factory=dict)  # how the preset was chosen (measured latencies)

    def recipe(self, teacher_spec: str | None = None) -> dict:
        return {
            "student": self.config.to_json(),
            "teacher": {**self.teacher.to_json(), "spec": teacher_spec},
            "latent_shape": list(self.latent_shape),
            "output_shape": list(self.output_shape),
            "preset": self.preset,
            "selection": self.selection,
        }


def _round8(x: float) -> int:
    return max(8, int(round(x / 8)) * 8)


def student_config(info: TeacherInfo, preset: Preset | str) -> StudentConfig:
    """The student config of a preset for a teacher (pure function of the teacher's structure)."""
    preset = Preset(preset)
    mult, sep_blocks, conv_blocks = _PRESETS[preset]
    n_up = int(round(math.log2(info.spatial_ratio)))
    # the wide, low-resolution stages (all but the two highest-resolution ones) are separable
    n_sep = max(1, n_up - 1)
    widths = tuple(_round8(w * mult) for w in info.stage_widths)
    blocks = tuple(sep_blocks if i < n_sep else conv_blocks for i in range(n_up + 1))
    return StudentConfig(
        latent_channels=info.latent_channels, temporal_ratio=info.temporal_ratio, spatial_ratio=info.spatial_ratio,
        widths=widths, blocks=blocks, separable_stages=n_sep, frame_rule=info.frame_rule,
    )


def _measure_host_ms(module: torch.nn.Module, latent_shape: tuple[int, ...], runtime: str = "onnxruntime") -> float:
    """Median latency (ms) of a candidate student on this host (edgeprune.latency.measure_module, 1 thread)."""
    from edgeprune.devices.runner import BenchSettings
    from edgeprune.latency.measure import measure_module
    from edgeprune.models import InputSpec

    r = measure_module(module.eval(), (InputSpec(tuple(latent_shape)),), device="host", runtime=runtime,
                       settings=BenchSettings(threads=1, warmup=2, min_runs=10, max_runs=50, max_seconds=2.0))
    return r.timing.p50_ms


def _predict_table_ms(table, module: torch.nn.Module, latent_shape: tuple[int, ...]) -> float:
    """End-to-end latency (ms) of a candidate student predicted from a latency table."""
    from edgeprune.errors import TableError
    from edgeprune.latency import LatencyModel
    from edgeprune.models import InputSpec

    try:
        return LatencyModel.build(module.eval(), (InputSpec(tuple(latent_shape)),), table).predict()
    except TableError as e:
        raise EdgepruneError(
            f"the latency table {table.path} cannot predict the student decoders ({e}); build it on the candidate "
            "students first (edgeprune.latency.build_table on each preset's StudentDecoder; see docs/vae.md)"
        ) from None


def redesign(
    teacher,
    latent_shape: tuple[int, ...],
    *,
    preset: Preset | str | None = None,
    target_latency_ms: float | None = None,
    table: str | None = None,
    seed: int = 0,
) -> RedesignResult:
    """Build a student decoder for ``teacher`` (a diffusers VAE) at ``latent_shape`` (B, C, T, H, W).

    Without a latency target the preset (default ``small``) is used. With ``target_latency_ms`` the
    largest preset that fits is chosen: from a latency ``table`` (needs edgeprune.latency's predictor),
    or, without a table, by measuring every candidate with ONNX Runtime on this host.
    """
    adapter = adapter_for(teacher)
    info = adapter.describe(teacher)
    latent_shape = tuple(int(d) for d in latent_shape)
    check_latent_shape(info, latent_shape)
    teacher.eval()
    with torch.no_grad():
        try:
            probe = adapter.decode(teacher, torch.zeros(latent_shape))
        except Exception as e:
            raise EdgepruneError(
                f"the {info.class_name} teacher cannot decode a latent of shape {'x'.join(map(str, latent_shape))} "
                f"({type(e).__name__}: {str(e).splitlines()[0][:160]}); choose a latent size the teacher accepts"
            ) from None
    output_shape = tuple(probe.shape)
    b, _, t, h, w = latent_shape
    expected = (b, 3, out_frames(info.frame_rule, t, info.temporal_ratio), h * info.spatial_ratio, w * info.spatial_ratio)
    if output_shape != expected:
        raise InternalError(f"{info.class_name} decoded {output_shape}, but its structure predicts {expected}")

    selection: dict = {}
    if target_latency_ms is not None:
        chosen, selection = _choose_by_latency(info, latent_shape, target_latency_ms, table)
    else:
        if table is not None:
            raise EdgepruneError("--table needs --target-latency (the latency budget to fit); add --target-latency MS")
        chosen = Preset(preset or Preset.SMALL)
        selection = {"method": "preset"}
    config = student_config(info, chosen)
    torch.manual_seed(seed)
    student = StudentDecoder(config).eval()
    with torch.no_grad():
        got = tuple(student(torch.zeros(latent_shape)).shape)
    if got != output_shape:
        raise InternalError(f"student decodes {got}, teacher {output_shape}")
    return RedesignResult(student, config, info, latent_shape, output_shape, chosen.value, selection)


def _choose_by_latency(info, latent_shape, target_ms: float, table: str | None):
    """The largest preset whose latency fits ``target_ms``: predicted from ``table``, else measured here."""
    candidates = [Preset.SMALL, Preset.MEDIUM, Preset.LARGE]
    measured: dict[str, float] = {}
    if table is not None:
        from edgeprune.latency import load_table

        loaded = load_table(table)
        meta = loaded.meta
        method = f"table:{table} ({meta.get('device')}/{meta.get('runtime')}/{meta.get('precision')})"
        for p in candidates:
            m = StudentDecoder(student_config(info, p)).eval()
            measured[p.value] = round(_predict_table_ms(loaded, m, latent_shape), 3)
    else:
        method = "measured:host/onnxruntime"
        for p in candidates:
            m = StudentDecoder(student_config(info, p)).eval()
            measured[p.value] = round(_measure_host_ms(m, latent_shape), 3)
            log.info("preset %s: %.2f ms", p.value, measured[p.value])
    fits = [p for p in candidates if measured[p.value] <= target_ms]
    if not fits:
        raise EdgepruneError(
            f"no student preset fits {target_ms:g} ms (smallest: {measured['small']:.1f} ms by {method}); "
            "raise --target-latency or use a smaller --latent"
        )
    chosen = fits[-1]
    return chosen, {"method": method, "target_latency_ms": target_ms, "latency_ms": measured, "chosen": chosen.value}
