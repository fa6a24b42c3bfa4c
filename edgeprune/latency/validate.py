"""Predicted vs measured end-to-end latency on the model and random channel-pruned variants of it."""

from __future__ import annotations

import random
import statistics
from typing import Sequence

from edgeprune.devices.runner import BenchSettings


def validation_variants(module, input_specs: Sequence, graph, *, n: int, granularity: int = 8, seed: int = 0,
                        low: float = 0.1, high: float = 0.6) -> list[tuple[str, object, dict | None]]:
    """(name, module, plan): the model itself, then n-1 random channel-pruned variants (seeded)."""
    from edgeprune.latency.variants import group_ratios, out_channels, prune_variant

    prunable = graph.prunable()
    rng = random.Random(seed)
    out: list[tuple[str, object, dict | None]] = [("base", module, None)] if n > 0 else []
    for i in range(1, n):
        ratios = group_ratios(graph, rng, low=low, high=high)
        if not ratios:
            break
        variant = prune_variant(module, input_specs, ratios, list(ratios), granularity)
        out.append((f"random-{i}", variant, {k: v for k, v in out_channels(variant).items() if k in prunable}))
    return out


def score_variants(table, graph, variants, measured: Sequence[float], local: bool = True) -> list[dict]:
    """Rows {variant, predicted_ms, measured_ms, error_pct, kept_pct} from the table's current calibration
    (`local=False`: its one line, not the locally weighted curve)."""
    from edgeprune.latency.predictor import LatencyModel

    lm = LatencyModel.from_graph(graph, table, local=local)
    full = max(1, sum(lm.channels().values()))
    rows = []
    for (name, _, plan), ms in zip(variants, measured):
        predicted = lm.predict(plan)
        rows.append({"variant": name, "predicted_ms": round(predicted, 4), "measured_ms": round(ms, 4),
                     "error_pct": round(100 * (predicted - ms) / ms, 2),
                     "kept_pct": None if plan is None else round(100 * sum(plan.values()) / full, 1)})
    return rows


def validate_predictor(module, input_specs: Sequence, table, *, n: int, runner, granularity: int = 8,
                       seed: int = 0, low: float = 0.1, high: float = 0.6) -> list[dict]:
    """Rows {variant, predicted_ms, measured_ms, error_pct}: the model itself, then n-1 random variants,
    all timed in the same interleaved rounds (`edgeprune profile` times them together with the
    calibration models instead: see build_table)."""
    from edgeprune.latency.builder import E2E_PASSES, E2E_RELATIVE, E2E_SETTINGS
    from edgeprune.latency.kernels import extract_kernels
    from edgeprune.latency.measure import measure_interleaved
    from edgeprune.models.attention import prunable_attention

    meta = table.meta
    module = prunable_attention(module, input_specs)[0]
    graph = extract_kernels(module, input_specs)
    variants = validation_variants(module, input_specs, graph, n=n, granularity=granularity, seed=seed, low=low, high=high)
    measured = measure_interleaved([m for _, m, _ in variants], input_specs, device=runner, runtime=meta["runtime"],
                                   precision=meta["precision"], passes=E2E_PASSES, relative_to_first=E2E_RELATIVE,
                                   settings=BenchSettings(threads=meta.get("threads"), **E2E_SETTINGS))
    return score_variants(table, graph, variants, measured)


def error_summary(rows: list[dict]) -> dict:
    """Share of predictions within +-5% / +-10% and the mean absolute % error."""
    errs = [abs(r["error_pct"]) for r in rows]
    if not errs:
        return {"n": 0}
    return {"n": len(errs), "within_5_pct": round(100 * sum(e <= 5 for e in errs) / len(errs), 1),
            "within_10_pct": round(100 * sum(e <= 10 for e in errs) / len(errs), 1),
            "mean_abs_pct": round(statistics.fmean(errs), 2), "max_abs_pct": round(max(errs), 2)}
