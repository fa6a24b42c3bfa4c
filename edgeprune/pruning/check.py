"""The latency promise of a prune, measured: end to end on the table's runtime, when that is this host.

    measured(pruned) <= budget * (1 + tolerance)          (tolerance 3%)
    measured speedup >= 0.9 * predicted speedup

Every timing goes through edgeprune.latency.measure_module with the table's threads and
precision, so it is the same "measured" as the table's own entries.
"""

from __future__ import annotations

from edgeprune.devices.runner import BenchSettings

TOLERANCE = 0.03
SPEEDUP_SHARE = 0.9
REPEATS = 2
PAIRED_ROUNDS = 5  # side-by-side rounds: the median of 5 per-round ratios outvotes two rounds at mixed levels
SETTINGS = dict(warmup=5, min_runs=20, max_runs=400, max_seconds=4.0, rel_tol=0.01)


class HostTimer:
    """Times modules on this host for a table's runtime/precision/threads; None when it cannot."""

    def __init__(self, table, settings: dict | None = None):
        self.meta = table.meta
        self.settings = BenchSettings(threads=self.meta.get("threads"), **(settings or SETTINGS))
        self.reason = None
        if self.meta.get("device") != "host":
            self.reason = f"table measured on device '{self.meta.get('device')}', not this host"

    @property
    def available(self) -> bool:
        return self.reason is None

    def __call__(self, module, input_specs) -> float:
        # the faster of REPEATS medians: bursts of other jobs on a shared host only ever slow a run down
        return self._timed([module], input_specs, REPEATS)[0]

    def side_by_side(self, modules, input_specs) -> list[float]:
        """The modules timed in turn for PAIRED_ROUNDS rounds: on this host each one's fastest block
        median over all block rounds, on runners without blocks the first one's latency and each other
        one's as that times their median per-round ratio (see measure_interleaved): the promise compares
        the unpruned and the pruned model measured minutes apart otherwise, and this host's speed drifts
        by more than the 3% tolerance over minutes and switches levels over seconds."""
        return self._timed(modules, input_specs, PAIRED_ROUNDS, relative=True)

    def _timed(self, modules, input_specs, passes: int, relative: bool = False) -> list[float]:
        from edgeprune.latency.measure import measure_interleaved

        return measure_interleaved(modules, input_specs, device="host", runtime=self.meta["runtime"],
                                   precision=self.meta["precision"], settings=self.settings, passes=passes,
                                   statistic=lambda t: t.p50_ms, relative_to_first=relative)


def check_promise(budget_ms: float, predicted_base_ms: float, predicted_ms: float, measured_base_ms: float,
                  measured_ms: float, tolerance: float = TOLERANCE) -> dict:
    """The verdict as JSON-able facts; `ok` is False when either half of the promise fails."""
    predicted_speedup = predicted_base_ms / predicted_ms
    measured_speedup = measured_base_ms / measured_ms
    within = measured_ms <= budget_ms * (1 + tolerance)
    enough = measured_speedup >= SPEEDUP_SHARE * predicted_speedup
    # 6 decimals: a 28x28 model runs in 0.016 ms on a current CPU, where 4 decimals are 0.6% and can put the
    # recorded time on the other side of the +3% line from the verdict taken on the exact one
    return {"measured_base_ms": round(measured_base_ms, 6), "measured_ms": round(measured_ms, 6),
            "measured_speedup": round(measured_speedup, 3), "predicted_speedup": round(predicted_speedup, 3),
            "within_budget": bool(within), "speedup_share": round(measured_speedup / predicted_speedup, 3),
            "ok": bool(within and enough)}
