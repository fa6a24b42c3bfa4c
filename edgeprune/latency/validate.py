"""Predicted vs measured end-to-end latency on the model and random channel-pruned variants of it."""

from __future__ import annotations

import random
import statistics
from typing import Sequence

from edgeprune.devices.runner import BenchSettings


def validate_predictor(module, input_specs: Sequence, table, *, n: int, runner, granularity: int = 8,
                       seed: int = 0, low: float = 0.1, high: float = 0.6,
                       base_measured: float | None = None) -> list[dict]:
    """Rows {variant, predicted_ms, measured_ms, error_pct}: the model itself, then n-1 random variants.

    `base_measured`: the model's own end-to-end latency when the caller just measured it (calibration).
    """
    from edgeprune.latency.builder import E2E_PASSES, E2E_SETTINGS
    from edgeprune.latency.kernels import extract_kernels
    from edgeprune.latency.measure import measure_interleaved
    from edgeprune.latency.predictor import LatencyModel
    from edgeprune.latency.variants import group_ratios, out_channels, prune_variant

    meta = table.meta
    settings = BenchSettings(threads=meta.get("threads"), **E2E_SETTINGS)
    graph = extract_kernels(module, input_specs)
    lm = LatencyModel.from_graph(graph, table)
    rng = random.Random(seed)
    rows, models = [], []
    for i in range(n):
        if i == 0:
            variant, plan, name = module, None, "base"
        else:
            ratios = group_ratios(graph, rng, low=low, high=high)
            if not ratios:
                break
            variant = prune_variant(module, input_specs, ratios, list(ratios), granularity)
            plan = {k: v for k, v in out_channels(variant).items() if k in lm.channels()}
            name = f"random-{i}"
        rows.append({"variant": name, "predicted_ms": round(lm.predict(plan), 4),
                     "kept_pct": None if plan is None else round(100 * sum(plan.values()) / max(1, sum(lm.channels().values())), 1)})
        models.append(variant)
    skip_base = bool(base_measured) and bool(rows)
    measured = measure_interleaved(models[1:] if skip_base else models, input_specs, device=runner,
                                   runtime=meta["runtime"], precision=meta["precision"], settings=settings,
                                   passes=E2E_PASSES) if models else []
    if skip_base:
        measured = [base_measured] + measured
    for row, ms in zip(rows, measured):
        row["measured_ms"] = round(ms, 4)
        row["error_pct"] = round(100 * (row["predicted_ms"] - ms) / ms, 2)
    return rows


def error_summary(rows: list[dict]) -> dict:
    """Share of predictions within +-5% / +-10% and the mean absolute % error."""
    errs = [abs(r["error_pct"]) for r in rows]
    if not errs:
        return {"n": 0}
    return {"n": len(errs), "within_5_pct": round(100 * sum(e <= 5 for e in errs) / len(errs), 1),
            "within_10_pct": round(100 * sum(e <= 10 for e in errs) / len(errs), 1),
            "mean_abs_pct": round(statistics.fmean(errs), 2), "max_abs_pct": round(max(errs), 2)}
