"""Build (or extend) a latency table for a model: micro-models timed on the device, then calibration.

1. The model's kernels are extracted (edgeprune.latency.kernels); kernels that share a family
   (same op, spatial size, kernel, stride...) share table entries.
2. Each family is measured at the model's widths (the anchor), then along its width axes with
   adaptive sampling: an interval is split only where the measured midpoint disagrees with
   linear interpolation by more than `tol`, down to the grid `granularity`, so measurements
   go to staircases and knees, not to a dense grid. Wide, heavy kernels are refined first; the
   refinement stops at `budget_s`.
3. Every measurement exports a micro-model through the deployment's exporter and times it with
   the device's runner (edgeprune.latency.measure), then is written to the table atomically: a
   killed build loses at most the measurement in flight, and a re-run skips what is there.
4. Calibration: the model and a uniformly pruned variant are measured end to end; the
   predictor's overhead and scale are fitted to them and stored with the model's record.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from edgeprune.devices.runner import BenchSettings
from edgeprune.errors import EdgepruneError, TableError
from edgeprune.latency.calibration import fit_calibration
from edgeprune.latency.kernels import Kernel, KernelGraph, extract_kernels
from edgeprune.latency.node_timing import (COLD_WEIGHTS, PROFILER_COST, profiler_node_ms, timing_mode,
                                          weight_ms_per_mb)
from edgeprune.latency.table import LatencyTable, build_lock, default_table_path, library_versions, load_table

log = logging.getLogger(__name__)

# quick but stable timing for micro-models (each is one kernel: sub-millisecond)
MICRO_SETTINGS = dict(warmup=3, min_runs=10, max_runs=200, max_seconds=0.5, rel_tol=0.02)
# node-timed micro-models: a short wall-clock loop, then 30 profiled runs (median per node)
NODE_SETTINGS = dict(min_runs=30, max_runs=30, per_layer=True)
E2E_SETTINGS = dict(warmup=3, min_runs=20, max_runs=300, max_seconds=2.0, rel_tol=0.01)
E2E_PASSES = 5  # rounds of end-to-end timings (calibration, validation): see measure_interleaved
# the unpruned model's fastest repeat; every other model = that x its median per-round ratio to it.
# Per-model minima over rounds mix the host's speed levels (bench/results/host_noise.md): a variant
# whose fastest repeat fell in a slow phase read up to 1.5x off while its kernels' sum did not move.
E2E_RELATIVE = True


def latency_of(timing) -> float:
    """The statistic tables, calibration and validation agree on: the fastest kept repeat.

    A run that another process interrupted is slower by however long it waited; long runs
    (whole models) are interrupted more often than short ones (one kernel), so medians on a
    shared machine bias models against their kernels. The fastest repeat is the latency the
    device gives when nothing else runs, for kernels and models alike (outliers are rejected
    first, on both sides).
    """
    return float(timing.min_ms)


@dataclass
class BuildReport:
    table: LatencyTable
    path: Path
    model_key: str
    kernels: int
    families: int
    measured: int            # micro-model measurements taken by this run
    reused: int              # found in the table already
    seconds: float
    calibration: dict = field(default_factory=dict)
    validation: list[dict] = field(default_factory=list)
    budget_hit: bool = False

    def to_json(self) -> dict:
        return {"table": str(self.path), "model_key": self.model_key, "kernels": self.kernels,
                "families": self.families, "measured": self.measured, "reused": self.reused,
                "seconds": round(self.seconds, 2), "budget_hit": self.budget_hit, "calibration": self.calibration,
                "validation": self.validation}


class _Measurer:
    """Measure one kernel family at (cin, cout), through the table (skip if there, save after)."""

    def __init__(self, table: LatencyTable, runner, runtime: str, precision: str, threads: int | None,
                 on_measure=None, fixed_modules: dict | None = None):
        self.table, self.runner, self.runtime, self.precision = table, runner, runtime, precision
        self.fixed_modules = fixed_modules or {}  # opaque kernels are measured as the model's own module
        # node-timed tables (edgeprune.latency.node_timing): the profiler's kernel time, no call cost
        self.nodes = table.meta.get("kernel_timing") == "nodes"
        self.node_ms = float(table.meta.get("profiler_node_ms") or 0.0)  # the profiler's own cost per node
        self.settings = BenchSettings(threads=threads, **{**MICRO_SETTINGS, **(NODE_SETTINGS if self.nodes else {})})
        self.measured = self.reused = 0
        self.on_measure = on_measure

    def call_cost(self) -> float:
        """The runner's per-inference cost (bind inputs, run an empty-ish graph, fetch outputs)."""
        if self.table.data.get("call_ms") is not None:
            return self.table.call_ms
        import torch

        # wall clock even on a node-timed table: the session's own work is what this measures
        r = self._time(torch.nn.ReLU().eval(), _specs([(1, 8)]), replace(self.settings, per_layer=False))
        self.table.data["call_ms"] = round(r, 6)
        self.table.save()
        return r

    def _time(self, module, specs, settings: BenchSettings | None = None, kernel_op: str | None = None) -> float:
        from edgeprune.latency.measure import measure_module

        settings = settings or self.settings
        res = measure_module(module, specs, device=self.runner, runtime=self.runtime, precision=self.precision,
                             settings=settings)
        self._last_runs = res.timing.runs
        if settings.per_layer:
            from edgeprune.latency.node_timing import kernel_ms

            if not res.per_layer:
                raise TableError(f"{self.runner.device.name} returned no per-node profile for {self.runtime}; this "
                                 f"table is node-timed: rebuild it with another --out on a runner that profiles")
            return kernel_ms(res.per_layer, kernel_op, self.node_ms)
        return latency_of(res.timing)

    def point(self, k: Kernel, cin: int, cout: int, again: bool = False) -> float:
        """The kernel's latency at (cin, cout); `again`: time it once more and keep the faster of the two
        (interference only ever slows a run down, and it comes in bursts)."""
        key = k.family_key()
        have = self.table.lookup_point(key, cin, cout)
        if have is not None and not again:
            self.reused += 1
            return have
        from edgeprune.latency.micro import build_micro

        if k.dims == 0:
            module, specs = self._fixed_module(k)
        else:
            module, specs = build_micro(k.spec, cin, cout)
        if self.nodes:
            from edgeprune.latency.node_timing import micro_for_nodes

            module = micro_for_nodes(module, k.spec, self.runtime)
        raw = self._time(module, specs, kernel_op=k.op)
        ms = max(raw - (0.0 if self.nodes else self.table.call_ms), 1e-4)
        if have is not None and have <= ms:
            self.measured += 1
            return have
        self.table.add_point(key, k.spec, k.dims, cin, cout, ms, self._last_runs)
        self.table.save()
        self.measured += 1
        if self.on_measure:
            self.on_measure(k, cin, cout, ms)
        return ms

    def _fixed_module(self, k: Kernel):
        mod = self.fixed_modules.get(k.name)
        if mod is None:
            raise TableError(f"kernel {k.name} ({k.spec['module']['type']}) can only be measured from its model")
        return mod, _specs(k.spec["shapes"])


def _specs(shapes):
    from edgeprune.models.inputs import InputSpec

    return tuple(InputSpec(tuple(s)) for s in shapes)


def build_table(module, input_specs: Sequence, *, device: str = "host", runtime: str = "onnxruntime",
                precision: str = "fp32", threads: int | None = None, out: str | Path | None = None,
                granularity: int | str = "auto", validate: int = 0, force: bool = False, budget_s: float = 600.0,
                tol: float = 0.06, calibrate: bool = True, model_name: str = "model", seed: int = 0,
                progress: bool = True, kernel_timing: str = "auto") -> BuildReport:
    """Measure what `module` needs into the table at `out` (default profiles/<device>/<runtime>-<precision>.json).

    Resumes an existing table for the same fingerprint; refuses a foreign one unless `force`.
    `granularity`: the channel grid, or "auto" to probe the device for it (edgeprune.latency.granularity);
    an existing table keeps its own, as it keeps its `kernel_timing` ("auto": node-timed where
    edgeprune.latency.node_timing says so, else "nodes" or "wall"). Returns a BuildReport (with
    `validation` rows when `validate` > 0).
    """
    from edgeprune.devices.descriptor import load_device
    from edgeprune.devices.runner import get_runner
    from edgeprune.models.attention import prunable_attention
    from edgeprune.progress import console

    if granularity != "auto" and (isinstance(granularity, bool) or not isinstance(granularity, int) or granularity < 1):
        raise TableError(f"granularity must be a channel count >= 1 or 'auto' (got {granularity!r})")
    timing_mode(runtime, precision, kernel_timing)  # a bad value fails before anything is measured
    dev = load_device(device) if isinstance(device, str) else device
    dev.require_runtime(runtime)
    threads = threads or dev.threads
    path = Path(out) if out else default_table_path(dev.name, runtime, precision)
    t0 = time.perf_counter()
    # measured as pruning will see it: self-attention as plain layers whose heads can go
    module = prunable_attention(module, input_specs)[0]
    graph = extract_kernels(module, input_specs)
    runner = get_runner(dev)
    try:
        fp = {**runner.fingerprint(runtime, threads), "libraries": library_versions(runtime)}
        with build_lock(path):
            if path.exists():
                table = load_table(path, force=force, fingerprint=fp)
                if table.meta["runtime"] != runtime or table.meta["precision"] != precision:
                    raise TableError(f"{path} is a {table.meta['runtime']}/{table.meta['precision']} table; give "
                                     f"another --out for {runtime}/{precision}")
                granularity = int(table.meta.get("granularity") or granularity)
            else:
                probe = None
                if granularity == "auto":
                    from edgeprune.latency.granularity import MIN_SAVING, probe_granularity

                    granularity, probe_ms = probe_granularity(runner, runtime, precision, threads)
                    probe = {"ms": {str(w): v for w, v in probe_ms.items()}, "min_saving": MIN_SAVING}
                table = LatencyTable.new(device=dev.name, runtime=runtime, precision=precision, threads=threads,
                                         fingerprint=fp, granularity=granularity, path=path)
                table.meta["kernel_timing"] = timing_mode(runtime, precision, kernel_timing)
                if table.meta["kernel_timing"] == "nodes" and runtime in PROFILER_COST:
                    table.meta["profiler_node_ms"] = round(profiler_node_ms(runner, runtime, precision, threads), 6)
                if table.meta["kernel_timing"] == "nodes" and (runtime, precision) in COLD_WEIGHTS:
                    table.meta["weight_ms_per_mb"] = round(weight_ms_per_mb(runner, runtime, precision, threads), 6)
                if probe:
                    table.meta["granularity_probe"] = probe
                table.save()
            meas = _Measurer(table, runner, runtime, precision, threads, fixed_modules=dict(module.named_modules()))
            c = console()
            with _Progress(c, progress) as bar:
                meas.on_measure = bar.advance
                bar.status("runner call cost")
                meas.call_cost()
                budget_hit = _measure_model(graph, meas, granularity, tol, budget_s, bar)
            record = table.models.setdefault(graph.structure_key, {})
            record.update(name=model_name, input=",".join(str(s) for s in input_specs), kernels=len(graph.kernels),
                          anchors={k.name: [k.cin, k.cout] for k in graph.kernels if k.dims == 2})
            record.setdefault("measurements", 0)
            record["measurements"] += meas.measured
            record["table_build_s"] = round(record.get("table_build_s", 0.0) + time.perf_counter() - t0, 2)
            table.save()
            report = BuildReport(table, path, graph.structure_key, len(graph.kernels),
                                 len({k.family_key() for k in graph.kernels}), meas.measured, meas.reused, 0.0,
                                 budget_hit=budget_hit)
            from edgeprune.latency.validate import score_variants, validate_predictor, validation_variants

            if calibrate:
                # the scored variants are timed in the calibration's rounds: a shared machine's speed
                # drifts between two sessions by more than the errors being measured
                checks = validation_variants(module, input_specs, graph, n=validate, granularity=granularity,
                                             seed=seed) if validate else []
                report.calibration = calibrate_model(module, input_specs, graph, table, runner, runtime, precision,
                                                     threads, granularity, also=[m for _, m, _ in checks[1:]])
                also = report.calibration.pop("also_measured_ms")
                if checks:
                    report.validation = score_variants(table, graph, checks,
                                                       [report.calibration["measured_ms"][0]] + also)
            elif validate:
                report.validation = validate_predictor(module, input_specs, table, n=validate, runner=runner,
                                                       granularity=granularity, seed=seed)
            report.seconds = time.perf_counter() - t0
            return report
    finally:
        runner.close()


class _Progress:
    """A rich progress line: measurements taken so far and the kernel being measured."""

    def __init__(self, console, enabled: bool):
        self.console, self.enabled, self.p, self.n = console, enabled and console.is_terminal, None, 0

    def __enter__(self):
        if self.enabled:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.p = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                              console=self.console, transient=True)
            self.p.__enter__()
            self.task = self.p.add_task("profiling", total=None)
        return self

    def status(self, text: str):
        if self.p:
            self.p.update(self.task, description=f"[{self.n} measured] {text}")

    def advance(self, k, cin, cout, ms):
        self.n += 1
        self.status(f"{k.op} {cin}->{cout}: {ms:.3f} ms")

    def __exit__(self, *exc):
        if self.p:
            self.p.__exit__(*exc)


def _grid(lo: int, hi: int, step: int) -> int | None:
    """A multiple of `step` strictly between lo and hi, closest to their middle."""
    mid = (lo + hi) / 2
    cand = int(round(mid / step)) * step
    for c in (cand, cand + step, cand - step):
        if lo < c < hi:
            return c
    return None


def _measure_model(graph: KernelGraph, meas: _Measurer, g: int, tol: float, budget_s: float, bar) -> bool:
    """Anchors for every kernel, then adaptive sweeps by importance for `budget_s` seconds. True if cut short."""
    # 1. anchors (the table must answer for every kernel of the model)
    anchors: dict[tuple, dict] = {}
    for k in graph.kernels:
        if k.dims == 0:
            meas.point(k, 0, 0)
            continue
        key = (k.family_key(), k.cin, k.cout)
        if key not in anchors:
            before = meas.measured
            bar.status(f"anchor {k.describe()}")
            ms = meas.point(k, k.cin, k.cout)
            if k.dims == 2:
                meas.table.add_anchor(k.family_key(), k.cin, k.cout)
            anchors[key] = {"kernel": k, "ms": ms, "count": 0, "new": meas.measured > before}
        anchors[key]["count"] += 1
    # anchors taken by this run are timed a second time, later: a burst of interference (or a
    # runtime's start-up work in the first seconds of a process) must not set a whole family's scale
    for (fam, ci, co), a in anchors.items():
        if a["new"] and a["kernel"].dims > 0:
            a["ms"] = meas.point(a["kernel"], ci, co, again=True)
    meas.table.save()
    deadline = time.perf_counter() + budget_s
    # 2. adaptive sweeps along each free width, heaviest kernels first
    heap: list = []
    order = iter(range(1 << 30))
    for (fam, ci, co), a in anchors.items():
        k = a["kernel"]
        if not _can_vary(graph, k):
            continue
        weight = a["ms"] * a["count"]
        step = _step(k, g)
        in_var, out_var = _axes_vary(graph, k)
        if k.dims == 1:
            axes = [("out", co)]
        else:
            axes = ([("out", co)] if out_var else []) + ([("in", ci)] if in_var else [])
        for axis, full in axes:
            heapq.heappush(heap, (-weight, next(order), axis, 0, full, 0.0, a["ms"], k, step, ci, co))
        if k.dims == 2 and in_var and out_var:
            # points off both axis lines fit the interaction of the widths (predictor.fit_kappa),
            # most where random pruning puts layers (both widths at 40-90%)
            for i, (fi, fo) in enumerate(_DIAGONAL):
                heapq.heappush(heap, (-weight * 0.9 ** (i + 1) * (0.5 if i else 1.0), next(order), "diag", fi, fo,
                                      0.0, 0.0, k, step, ci, co))
    cut = False
    while heap:
        if time.perf_counter() > deadline:
            cut = True
            break
        negw, _, axis, lo, hi, ylo, yhi, k, step, ci, co = heapq.heappop(heap)
        if axis == "diag":
            xi, xo = _snap(ci * lo, step, ci), _snap(co * hi, step, co)
            if xi < ci and xo < co:
                bar.status(f"sweep {k.name} diagonal {xi}x{xo}")
                meas.point(k, xi, xo)
            continue
        x = _grid(lo, hi, step)
        if x is None:
            continue
        bar.status(f"sweep {k.name} {axis} {x}")
        if k.dims == 1:
            y = meas.point(k, x, x)
        elif axis == "out":
            y = meas.point(k, ci, x)
        else:
            y = meas.point(k, x, co)
        guess = ylo + (yhi - ylo) * (x - lo) / (hi - lo)
        err = abs(y - guess) / max(y, 1e-3)
        if err > tol:
            w = -negw
            heapq.heappush(heap, (-w * (x - lo) / max(hi, 1) * (1 + err), next(order), axis, lo, x, ylo, y, k, step, ci, co))
            heapq.heappush(heap, (-w * (hi - x) / max(hi, 1) * (1 + err), next(order), axis, x, hi, y, yhi, k, step,
                                  ci, co))
    return cut


# (cin, cout) fractions of the anchor measured off the axis lines, in this order
_DIAGONAL = ((0.5, 0.5), (0.75, 0.75), (0.5, 0.8), (0.8, 0.5), (0.3, 0.3), (0.65, 0.65))


def _step(k: Kernel, g: int) -> int:
    """The grid a kernel's widths move on: its group width (grouped conv), its head size (attention), else g."""
    if k.op == "gconv":
        return k.spec.get("group_width", g)
    if k.op == "attention":
        return int(k.spec["module"]["head_dim"])
    return g


def _snap(x: float, step: int, full: int) -> int:
    """x rounded to the grid, at least one step, below `full` where possible."""
    v = max(step, int(round(x / step)) * step)
    return v if v < full else max(1, full - step)


def _axes_vary(graph: KernelGraph, k: Kernel) -> tuple[bool, bool]:
    """Whether pruning can change this kernel's (in, out) widths."""
    def free(expr):
        return any(graph.group_of[s] not in graph.fixed_groups for s in expr.symbols())
    return free(k.cin_expr), free(k.cout_expr)


def _can_vary(graph: KernelGraph, k: Kernel) -> bool:
    """Whether pruning can change this kernel's widths (fixed ones need only their anchor)."""
    return any(_axes_vary(graph, k))


CALIBRATION_RATIOS = ()   # uniform pruning ratios of calibration variants (aligned widths: unrepresentative)
CALIBRATION_RANDOM = 3    # random channel-pruned variants, seeded apart from any validation seed
CALIBRATION_HEAVY = 1     # then random variants pruned 50-80% per group: the widths a 2-3x prune reaches
HEAVY_RATIOS = (0.5, 0.8)
CALIBRATION_SEED = 7919


def calibrate_model(module, input_specs, graph: KernelGraph, table: LatencyTable, runner, runtime: str,
                    precision: str, threads: int | None, granularity: int,
                    ratios: Sequence[float] = CALIBRATION_RATIOS, n_random: int = CALIBRATION_RANDOM,
                    also: Sequence = (), n_heavy: int = CALIBRATION_HEAVY) -> dict:
    """Fit overhead_ms and scale (least squares, relative errors) on end-to-end timings of the model,
    uniformly pruned variants, and random channel-pruned ones; a single point gives an overhead only.
    `also`: more modules timed in the same rounds (not fitted); their latencies are `also_measured_ms`.

    Random variants matter: layers with unequal in/out ratios and mixed widths cost more in the
    graph (layout changes between kernels, tiles) than uniform pruning shows, and that is what a
    pruning solver proposes. Their seed is fixed and apart from validate_predictor's. The heavy
    ones reach the widths of a 2-3x prune: fitted on mild prunes only, the line through the points
    extrapolated to a 28x28 MobileNetV2 pruned 3x with a negative overhead and predicted 4.4x for
    a measured 3.1x (bench/results/prune_pareto.md).
    """
    from edgeprune.latency.measure import measure_interleaved

    settings = BenchSettings(threads=threads, **E2E_SETTINGS)
    record = table.models[graph.structure_key]
    raw = _uncalibrated(graph, table)

    cal = {"kernel_sum_ms": [], "ratios": [], "passes": E2E_PASSES,
           "statistic": "median per-round ratio to the model" if E2E_RELATIVE else "fastest over rounds"}
    models = []
    for label, variant, plan in calibration_variants(module, input_specs, graph, granularity, ratios, n_random, cal,
                                                     n_heavy):
        models.append(variant)
        cal["kernel_sum_ms"].append(raw.predict(plan))
        cal["ratios"].append(label)
    timed = measure_interleaved(models + list(also), input_specs, device=runner, runtime=runtime,
                                precision=precision, settings=settings, passes=E2E_PASSES,
                                relative_to_first=E2E_RELATIVE)
    cal["measured_ms"] = timed[:len(models)]
    overhead, scale = fit_calibration(cal["kernel_sum_ms"], cal["measured_ms"])
    record.update(overhead_ms=round(overhead, 6), scale=round(scale, 6), calibration=cal)
    table.save()
    return {"overhead_ms": overhead, "scale": scale, **cal, "also_measured_ms": timed[len(models):]}


def calibration_variants(module, input_specs, graph: KernelGraph, granularity: int,
                         ratios: Sequence[float] = CALIBRATION_RATIOS, n_random: int = CALIBRATION_RANDOM,
                         notes: dict | None = None, n_heavy: int = CALIBRATION_HEAVY) -> list[tuple]:
    """(label, module, plan) of the calibration models: the model itself (label 0.0, plan None), then
    its uniformly, randomly and heavily pruned variants (seeded: the same plans on every call; the
    heavy ones come last, so tables calibrated before they existed refit on their first plans)."""
    from edgeprune.latency.variants import group_ratios, out_channels, prune_variant

    prunable = set(graph.prunable())
    out: list[tuple] = [(0.0, module, None)]
    rng = random.Random(CALIBRATION_SEED)
    widths = out_channels(module)
    for r in list(ratios) + [None] * n_random + ["heavy"] * n_heavy:
        # torch-pruning skips a layer whose kept width would round below one step: cap heavy ratios there
        # (here, not in prune_variant: the mild and validation variants' plans must stay as recorded)
        if r == "heavy":
            pr = {n: max(0.0, min(v, 1 - (granularity + 0.5) / widths.get(n, granularity))) for n, v in
                  group_ratios(graph, rng, low=HEAVY_RATIOS[0], high=HEAVY_RATIOS[1]).items()}
        else:
            pr = group_ratios(graph, rng, ratio=r)
        if not pr:
            break
        try:
            variant = prune_variant(module, input_specs, pr, list(pr), granularity)
        except EdgepruneError as e:
            if notes is not None:
                notes["note"] = f"no pruned variant ({e}); overhead only"
            break
        out.append(("random" if r is None else r, variant,
                    {n: c for n, c in out_channels(variant).items() if n in prunable}))
    return out


def recalibrate(module, input_specs, graph: KernelGraph, table: LatencyTable, measured_ms: Sequence[float],
                granularity: int = 8) -> tuple[float, float, list[float]]:
    """(overhead, scale, kernel sums) refitted on the calibration models' *recorded* timings with the
    current predictor: a predictor change is scored against the measurements already taken."""
    raw = _uncalibrated(graph, table)
    plans = [plan for _, _, plan in calibration_variants(module, input_specs, graph, granularity)]
    sums = [raw.predict(plan) for plan in plans[:len(measured_ms)]]
    overhead, scale = fit_calibration(sums, list(measured_ms)[:len(sums)])
    return overhead, scale, sums


def refit_calibration(module, input_specs, graph: KernelGraph, table: LatencyTable, granularity: int = 8) -> dict:
    """The model's record (in memory; `table.save()` keeps it) with its calibration refitted on its own
    recorded timings by the current predictor: the line and the kernel sums the predictor's locally
    weighted curve reads. A table calibrated under an older predictor must not pair old sums with it."""
    record = table.models.get(graph.structure_key) or {}
    measured = (record.get("calibration") or {}).get("measured_ms")
    if not measured:
        raise TableError(f"{table.path or 'latency table'}: no calibration timings for this model; run `edgeprune "
                         "profile` for it")
    overhead, scale, sums = recalibrate(module, input_specs, graph, table, measured, granularity)
    record.update(overhead_ms=round(overhead, 6), scale=round(scale, 6))
    record["calibration"] = {**record["calibration"], "kernel_sum_ms": sums}
    return record


def _uncalibrated(graph: KernelGraph, table: LatencyTable):
    """The predictor without overhead and scale: its predictions are the kernel sums calibration fits."""
    from edgeprune.latency.predictor import LatencyModel

    raw = LatencyModel.from_graph(graph, table, local=False)  # the curve would be dropped: not built
    raw.set_calibration(0.0, 1.0)
    return raw
