"""Predict a model's end-to-end latency, and that of any pruned configuration of it, from a table.

    latency = overhead_ms + scale * sum(kernel latencies)

Each kernel's latency at (cin, cout) comes from its family's measured curves. A conv/linear
family is measured along two lines through an anchor (cin0, cout0): A(cout) at cin0 and B(cin)
at cout0, and answered as A(cout) * B(cin) / A(cout0) (latency is separable in the two widths
once the runner's per-call cost is removed)... almost: a kernel also has per-call work and
input-read / output-write terms (latency ~ a + b*cin + c*cout + d*cin*cout), so shrinking both
widths costs more than the product says. With dA = A(cout) - m, dB = B(cin) - m (m the anchor),

    L(cin, cout) = m + dA + dB + kappa * dA * dB / m

is exact for any such bilinear surface (kappa = 1: the pure product, kappa = 0: additive), keeps
the measured staircases along both axes, and kappa is fitted per family (least squares) on the
points measured off both lines (the builder's diagonal probes); 1 where there are none. One-width kernels (depthwise conv, pooling,
elementwise, concat...) have one curve. Every line is read as a non-decreasing staircase first
(`monotone`: a probe slower than a wider one ran in a slow phase of a shared device), and kappa
is capped per query so no kernel is predicted above either of its lines (`_combine`), and no
kernel is predicted cheaper per unit of work than at its anchor (`proportional_floor`).
Between two measured counts one grid step apart the
curve is a step (kernels work in tiles: 37 channels cost what 40 cost); over wider, verified
intervals it is linear. Curves are tabulated per integer count when the model is built, so a
prediction is a handful of numpy gathers: ~10,000 queries per second (bench/predictor_speed.py).

overhead_ms and scale are calibrated per model by `edgeprune profile` from end-to-end
measurements of the model and random channel-pruned variants of it, timed in interleaved rounds
(in-graph kernels run a little faster or slower than alone; the runtime has fixed per-inference work).
With three or more calibration models, each plan gets the line fitted nearest its own kernel sum
(edgeprune.latency.calibration): one line cannot follow both mild and 2-3x prunes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from edgeprune.errors import PruningError, TableError
from edgeprune.latency.calibration import CalibrationCurve
from edgeprune.latency.kernels import KernelGraph, extract_kernels
from edgeprune.latency.table import LatencyTable

log = logging.getLogger(__name__)


def monotone(points: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """Measured (count, ms) as a non-decreasing staircase: a count timed slower than a wider one of
    the same kernel takes the wider one's time.

    Interference on a shared device only ever slows a timing down, and it comes in phases of
    seconds: one probe in a slow phase (seen: 0.31 ms at 72 channels against 0.20 ms at 96) would
    otherwise make the pruned kernel cost more than the unpruned one.
    """
    out, low = [], float("inf")
    for x, y in sorted(points, reverse=True):
        low = min(low, float(y))
        out.append((int(x), low))
    return out[::-1]


def curve(xs: Sequence[int], ys: Sequence[float], n: int, step: int, floor: float = 0.0) -> np.ndarray:
    """Latency at every integer count 0..n from measured (x, y): steps across one-grid gaps, else linear;
    below the narrowest measurement, linear down to `floor` at zero channels."""
    pts = sorted({int(x): float(y) for x, y in zip(xs, ys)}.items())
    out = np.zeros(n + 1)
    prev_x, prev_y = 0, min(floor, pts[0][1]) if pts else 0.0
    idx = np.arange(n + 1)
    for x, y in pts:
        lo, hi = prev_x, min(x, n)
        if hi > lo:
            seg = idx[lo + 1:hi + 1]
            if x - prev_x <= step and prev_x > 0:
                out[lo + 1:hi + 1] = y
            else:
                out[lo + 1:hi + 1] = prev_y + (y - prev_y) * (seg - prev_x) / (x - prev_x)
        prev_x, prev_y = x, y
        if x >= n:
            break
    if prev_x < n:  # beyond the last measurement: proportional (only reached for widths never profiled)
        seg = idx[prev_x + 1:]
        out[prev_x + 1:] = prev_y * seg / max(prev_x, 1)
    return out


def proportional_floor(line: np.ndarray, ref: int) -> np.ndarray:
    """A line no lower than proportional to the work below its reference count: line[x] >= line[ref] * x / ref.

    A kernel does not get cheaper per channel as it narrows (smaller GEMMs use the hardware
    worse). Points of a few microseconds minus the runner's call cost can come out near zero,
    and the staircase reading carries such a point down to every narrower count: a 28x28
    MobileNetV2's 32->40 head conv was priced at 0.0000 ms, and a knapsack pruned exactly the
    kernels the table called free (its plans measured ~20% slower than predicted)."""
    ref = min(int(ref), len(line) - 1)
    if ref <= 0:
        return line
    return np.maximum(line, line[ref] * np.arange(len(line)) / ref)


@dataclass
class _Resolved:
    anchor_in: int
    anchor_out: int
    a: np.ndarray   # latency along cout at anchor_in (2-D) or along the width (1-D)
    b: np.ndarray   # latency along cin at anchor_out (2-D), [1.0] for 1-D
    m: float        # latency at the anchor (2-D), 1.0 for 1-D
    out_points: tuple = ()  # measured (count, ms) along the out-channel axis
    kappa: float = 1.0  # interaction of the two widths (2-D), see the module docstring
    floor: float = 0.0  # the least the kernel costs at any width (op_floors)


class LatencyModel:
    """Per-kernel lookup arrays for one model on one table; see the module docstring."""

    def __init__(self, graph: KernelGraph, table: LatencyTable, resolved: list[_Resolved | None], record: dict | None,
                 local: bool = True):
        self.graph, self.table, self.record = graph, table, record
        self.kernels = graph.kernels
        self.overhead_ms = float(record.get("overhead_ms", table.call_ms)) if record else table.call_ms
        self.scale = float(record.get("scale", 1.0)) if record else 1.0
        # kernel sum -> latency; None: the one line (overhead_ms, scale)
        self.curve: CalibrationCurve | None = CalibrationCurve.from_record(record) if local else None
        self._fixed_ms = 0.0
        live = [i for i, r in enumerate(resolved) if r is not None and self.kernels[i].dims > 0]
        for i, r in enumerate(resolved):
            if r is not None and self.kernels[i].dims == 0:
                self._fixed_ms += r.m
        self._live = live
        self._resolved = resolved
        self._granularity = int(table.meta.get("granularity") or 8)
        nsym = len(graph.symbols)
        self._cin_mat = np.zeros((len(live), nsym))
        self._cout_mat = np.zeros((len(live), nsym))
        self._cin_c = np.zeros(len(live))
        self._cout_c = np.zeros(len(live))
        a_parts, b_parts, a_off, b_off, a_len, b_len, m, kap = [], [], [], [], [], [], [], []
        ao = bo = 0
        for row, i in enumerate(live):
            k, r = self.kernels[i], resolved[i]
            for s, c in k.cin_expr.terms:
                self._cin_mat[row, s] += c
            for s, c in k.cout_expr.terms:
                self._cout_mat[row, s] += c
            self._cin_c[row], self._cout_c[row] = k.cin_expr.const, k.cout_expr.const
            a_parts.append(r.a)
            b_parts.append(r.b)
            a_off.append(ao)
            b_off.append(bo)
            a_len.append(len(r.a) - 1)
            b_len.append(len(r.b) - 1)
            ao += len(r.a)
            bo += len(r.b)
            m.append(r.m)
            kap.append(r.kappa)
        self._kappa = np.array(kap, dtype=float)
        self._a = np.concatenate(a_parts) if a_parts else np.zeros(1)
        self._b = np.concatenate(b_parts) if b_parts else np.zeros(1)
        self._a_off, self._b_off = np.array(a_off, dtype=np.int64), np.array(b_off, dtype=np.int64)
        self._a_len, self._b_len = np.array(a_len, dtype=np.int64), np.array(b_len, dtype=np.int64)
        self._m = np.array(m)
        self._floor = np.array([resolved[i].floor for i in live], dtype=float)
        # weights streamed from memory once per inference (edgeprune.latency.node_timing.weight_ms_per_mb)
        self._w_ms = float(table.meta.get("weight_ms_per_mb") or 0.0) * 4e-6 * np.array(
            [weight_elements(self.kernels[i].spec, self.kernels[i].dims) for i in live], dtype=float)
        self._weights_priced = bool(self._w_ms.any())  # read once: _kernel_ms is the solvers' inner loop
        self._two_d = np.array([self.kernels[i].dims == 2 for i in live])
        self._ci0 = np.array([max(resolved[i].anchor_in, 1) for i in live], dtype=float)
        self._co0 = np.array([max(resolved[i].anchor_out, 1) for i in live], dtype=float)
        # symbol bookkeeping: plans name modules; coupled symbols share one width
        self._sym_index = {n: i for i, n in enumerate(graph.symbols)}
        self._orig = np.array(graph.sym_values, dtype=float)
        self._groups = np.array(graph.group_of)
        self._members: dict[int, list[int]] = {}
        self._member_pos = np.zeros(len(graph.group_of), dtype=np.int64)
        for i, g in enumerate(graph.group_of):
            self._member_pos[i] = len(self._members.setdefault(g, []))
            self._members[g].append(i)
        self._fixed_mask = np.array([g in graph.fixed_groups for g in graph.group_of], dtype=bool)
        self._n_groups = int(self._groups.max()) + 1 if len(self._groups) else 0
        self._prunable = graph.prunable()

    # ------------------------------------------------------------ construction
    @classmethod
    def build(cls, module, input_specs, table: LatencyTable, local: bool = True) -> "LatencyModel":
        from edgeprune.models.attention import prunable_attention

        # priced as pruning sees it: self-attention as plain layers (edgeprune.models.attention)
        graph = extract_kernels(prunable_attention(module, input_specs)[0], input_specs)
        return cls.from_graph(graph, table, local=local)

    @classmethod
    def from_graph(cls, graph: KernelGraph, table: LatencyTable, allow_missing: bool = False,
                   local: bool = True) -> "LatencyModel":
        """`local=False`: the record's one calibration line for every plan (how tables were read before
        the locally weighted curve; the fidelity benchmark scores both)."""
        record = table.models.get(graph.structure_key)
        anchors = (record or {}).get("anchors", {})
        floors = op_floors(table)
        resolved = []
        for k in graph.kernels:
            try:
                resolved.append(resolve_kernel(table, k, anchors.get(k.name), floors.get(k.op, 0.0)))
            except TableError:
                if not allow_missing:
                    raise
                resolved.append(None)
        if record is None and not allow_missing:
            log.warning("no calibration for this model in %s; overhead is the runner's call cost only "
                        "(run `edgeprune profile` for this model to calibrate)", table.path)
        return cls(graph, table, resolved, record, local)

    # ------------------------------------------------------------ queries
    def channels(self) -> dict[str, int]:
        """Current out-channel count of every conv/linear whose width pruning can change."""
        return dict(self._prunable)

    def _sym_values(self, channels: Mapping[str, float] | None) -> np.ndarray:
        """Symbol values for a plan: a coupled group takes the value of its first member (member order)
        named in the plan. Vectorized: the solvers call this in their inner loops."""
        vals = self._orig.copy()
        if not channels:
            return vals
        try:
            idx = np.fromiter((self._sym_index[n] for n in channels), dtype=np.int64, count=len(channels))
        except KeyError:
            unknown = [n for n in channels if n not in self._sym_index]
            raise PruningError(f"unknown layer(s) {', '.join(unknown[:3])} in the channel plan; the prunable layers "
                               f"are the keys of LatencyModel.channels() (e.g. {next(iter(self._prunable), '-')})") from None
        v = np.fromiter(channels.values(), dtype=float, count=len(channels))
        bad = self._fixed_mask[idx] & (np.rint(v) != self._orig[idx])
        if bad.any():
            name = self.graph.symbols[idx[np.argmax(bad)]]
            raise PruningError(f"layer {name}'s width cannot change (it feeds a model output or a "
                               f"fixed-width op); leave it out of the channel plan")
        gid = self._groups[idx]
        order = np.lexsort((self._member_pos[idx], gid))  # by group, then member order
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = gid[order][1:] != gid[order][:-1]      # the first named member of each group
        gv = np.full(self._n_groups, np.nan)
        gv[gid[order][keep]] = v[order][keep]
        per_sym = gv[self._groups]
        return np.where(np.isnan(per_sym), vals, per_sym)

    def _widths(self, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cin = np.rint(self._cin_mat @ vals + self._cin_c).astype(np.int64)
        cout = np.rint(self._cout_mat @ vals + self._cout_c).astype(np.int64)
        return np.maximum(cin, 1), np.maximum(cout, 1)

    def _kernel_ms(self, channels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cin, cout = self._widths(self._sym_values(channels))
        a = self._a[self._a_off + np.minimum(cout, self._a_len)]
        b_idx = np.where(self._two_d, np.minimum(cin, self._b_len), 0)
        b = self._b[self._b_off + b_idx]
        ms = np.maximum(_combine(a, b, self._m, self._kappa, self._two_d, cin / self._ci0, cout / self._co0), self._floor)
        if self._weights_priced:
            ms = ms + self._w_ms * np.where(self._two_d, cin * cout, cout)
        return ms, cin, cout

    def set_calibration(self, overhead_ms: float, scale: float) -> None:
        """One line for every plan (drops the locally weighted curve): scale 1, overhead 0 gives raw kernel sums."""
        self.overhead_ms, self.scale, self.curve = float(overhead_ms), float(scale), None

    def _latency(self, kernel_sum: float) -> tuple[float, float]:
        """(end-to-end ms, d ms / d kernel sum) at a plan's raw kernel sum."""
        if self.curve is None:
            return self.overhead_ms + self.scale * kernel_sum, self.scale
        return self.curve(kernel_sum)

    def _line(self, kernel_sum: float) -> tuple[float, float]:
        """(overhead ms, scale) of the calibration line at a plan's raw kernel sum."""
        if self.curve is None:
            return self.overhead_ms, self.scale
        return self.curve.line_at(kernel_sum)

    def calibration_at(self, channels: Mapping[str, int] | None = None) -> tuple[float, float]:
        """(overhead ms, scale) of the calibration line this plan is predicted with."""
        ms, _, _ = self._kernel_ms(channels)
        return self._line(float(ms.sum() + self._fixed_ms))

    def predict(self, channels: Mapping[str, int] | None = None) -> float:
        """End-to-end latency (ms) of the model, or of the pruned configuration `channels`."""
        ms, _, _ = self._kernel_ms(channels)
        return float(self._latency(float(ms.sum() + self._fixed_ms))[0])

    def predict_layers(self, channels: Mapping[str, int] | None = None) -> list[dict]:
        ms, cin, cout = self._kernel_ms(channels)
        scale = self._line(float(ms.sum() + self._fixed_ms))[1]
        rows = [{"name": self.kernels[i].name, "op": self.kernels[i].op, "cin": int(cin[r]), "cout": int(cout[r]),
                 "ms": float(scale * ms[r])} for r, i in enumerate(self._live)]
        return rows

    def torch_predict(self, channels: Mapping[str, "object"]):
        """Differentiable latency (ms) from real-valued channel counts (tensors), linear between integers."""
        import torch

        base = torch.tensor(self._sym_values(None), dtype=torch.float64)
        vals = [base[i] for i in range(len(base))]
        unknown = [n for n in channels if n not in self._sym_index]
        if unknown:
            raise PruningError(f"unknown layer(s) {', '.join(unknown[:3])} in the channel plan")
        for members in self._members.values():
            for s in members:
                name = self.graph.symbols[s]
                if name in channels:
                    v = torch.as_tensor(channels[name], dtype=torch.float64)
                    for t in members:
                        vals[t] = v
                    break
        v = torch.stack(vals) if vals else torch.zeros(0, dtype=torch.float64)
        cin = torch.as_tensor(self._cin_mat) @ v + torch.as_tensor(self._cin_c)
        cout = torch.as_tensor(self._cout_mat) @ v + torch.as_tensor(self._cout_c)
        a = _interp(torch.as_tensor(self._a), torch.as_tensor(self._a_off), torch.as_tensor(self._a_len), cout)
        b_full = _interp(torch.as_tensor(self._b), torch.as_tensor(self._b_off), torch.as_tensor(self._b_len), cin)
        b = torch.where(torch.as_tensor(self._two_d), b_full, torch.ones_like(b_full))
        two_d = torch.as_tensor(self._two_d)
        per = torch.maximum(_combine(a, b, torch.as_tensor(self._m), torch.as_tensor(self._kappa), two_d,
                                     cin / torch.as_tensor(self._ci0), cout / torch.as_tensor(self._co0), xp=torch),
                            torch.as_tensor(self._floor))
        per = per + torch.as_tensor(self._w_ms) * torch.where(two_d, cin * cout, cout)
        total = per.sum() + self._fixed_ms
        # the calibration curve is piecewise linear: its value and slope at this sum, the gradient through the sum
        value, slope = self._latency(float(total.detach()))
        return value + slope * (total - total.detach())

    def steps(self, name: str) -> list[int]:
        """Out-channel counts of module `name` that cost measurably more (>= 3%) than one channel fewer.

        Each is the first count of a new tile: the count just below it is the cheapest width of
        the tile below (a good round_to target). Only steps the sweeps resolved are reported.
        """
        idx = [i for i in self._live if self.kernels[i].name == name]
        if not idx:
            raise PruningError(f"no kernel named {name}; use a key of LatencyModel.channels()")
        pts = self._resolved[idx[0]].out_points
        g = self._granularity
        return [x0 + 1 for (x0, y0), (x1, y1) in zip(pts, pts[1:]) if x1 - x0 <= g and y1 > y0 * 1.03]


def _combine(a, b, m, kappa, two_d, x_in, x_out, xp=np):
    """Kernel latency from its two axis curves (see the module docstring); a*b/m for one-width kernels.

    x_in, x_out: the widths as fractions of the anchor's; a two-width kernel costs at least
    m * x_in * x_out (no cheaper per MAC than at the anchor, see proportional_floor).

    kappa is capped at m / max(m - a, m - b) at each query: then the answer is never above either
    axis curve (narrowing one width cannot make a kernel slower). A true bilinear surface satisfies
    the cap; a kappa fitted on noisy probes (up to 3) would otherwise turn a kernel pruned on both
    widths slower than the unpruned one (seen: 2x the anchor for an ExecuTorch 1x1 conv).
    `xp` is numpy for predictions and torch for the differentiable predictor: one formula."""
    lim = xp.maximum(xp.maximum(m - a, m - b), 1e-9 * m)
    k = xp.minimum(kappa, m / lim)
    two = xp.maximum(a + b - m + k * (a - m) * (b - m) / m, m * x_in * x_out)
    return xp.where(two_d, two, a * b / m)


def fit_kappa(points, a: np.ndarray, b: np.ndarray, m: float, lo: float = 0.0, hi: float = 3.0) -> float:
    """Least-squares kappa from points (cin, cout, ms) measured off both axis lines; 1.0 without any."""
    num = den = 0.0
    for ci, co, y in points:
        if ci >= len(b) or co >= len(a):
            continue
        da, db = a[co] - m, b[ci] - m
        u = da * db / m
        if abs(u) < 1e-3 * m:
            continue
        w = 1.0 / max(y, 1e-6) ** 2  # relative errors: every point counts the same
        num += w * u * (y - (a[co] + b[ci] - m))
        den += w * u * u
    return float(min(max(num / den, lo), hi)) if den > 0 else 1.0


def _interp(flat, off, length, x):
    import torch

    xc = torch.clamp(x, min=1.0)
    xc = torch.minimum(xc, length.to(xc.dtype))
    lo = torch.floor(xc).to(torch.int64)
    hi = torch.minimum(lo + 1, length)
    frac = xc - lo.to(xc.dtype)
    return flat[off + lo] * (1 - frac) + flat[off + hi] * frac


def weight_elements(spec: dict, dims: int) -> float:
    """Weights per unit of the kernel's widths: per cin*cout for a conv/linear, per channel for a
    depthwise or grouped conv; 0 for kernels without weights."""
    k = 1
    for d in spec.get("kernel") or ():
        k *= int(d)
    op = spec.get("op")
    if (op in ("conv", "linear") and dims == 2) or op == "dwconv":
        return float(k)
    if op == "gconv":
        return float(k * spec.get("group_width", 1))
    return 0.0


def op_floors(table: LatencyTable) -> dict[str, float]:
    """Per op, the cheapest time measured for it anywhere in the table: what the narrowest kernel of
    that op still costs (on a node-timed table, the runtime's per-node work).

    Below its narrowest measurement a line used to run straight to zero; on ONNX Runtime an SE
    block's 72->8 conv was priced at 0.5 us against 3 us measured, and a pruned MobileNetV3's
    small kernels summed to 0.74x their measured times (0.92x for the unpruned model)."""
    out: dict[str, float] = {}
    for entry in table.entries.values():
        op = (entry.get("spec") or {}).get("op")
        ms = [float(p[2]) for p in entry.get("points", ())]
        if op and ms:
            out[op] = min(out.get(op, float("inf")), min(ms))
    return out


def resolve_kernel(table: LatencyTable, kernel, anchor: Sequence[int] | None = None,
                   floor: float = 0.0) -> _Resolved:
    """The curves that answer for `kernel` (anchored at `anchor`, else the smallest anchor covering it);
    `floor`: what the narrowest kernel of its op costs (`op_floors`)."""
    key = kernel.family_key()
    entry = table.entries.get(key)
    g = int(table.meta.get("granularity") or 8)
    if entry is None or not entry["points"]:
        raise TableError(f"{table.path or 'latency table'}: no measurement for kernel {kernel.describe()}; run `edgeprune profile` "
                         "for this model (same --input, device, runtime and precision) to add it")
    pts = entry["points"]
    if kernel.dims == 0:
        return _Resolved(0, 0, np.zeros(1), np.ones(1), float(pts[0][2]))
    floor = min(floor, min(float(p[2]) for p in pts))
    if kernel.dims == 1:
        line = monotone([(p[0], p[2]) for p in pts])
        xs, ys = [x for x, _ in line], [y for _, y in line]
        top = max(xs)
        if top < kernel.cout:
            raise TableError(f"{table.path or 'latency table'}: kernel {kernel.describe()} was measured up to {top} channels only; "
                             "run `edgeprune profile` for this model to extend it")
        n = max(top, kernel.cout)
        return _Resolved(0, 0, proportional_floor(curve(xs, ys, n, g, floor), top), np.ones(1), 1.0,
                         tuple(sorted(zip(xs, ys))), floor=floor)
    anchors = [tuple(a) for a in entry.get("anchors", [])]
    if anchor is not None and tuple(anchor) in anchors:
        ci0, co0 = anchor
    else:
        cover = [a for a in anchors if a[0] >= kernel.cin and a[1] >= kernel.cout]
        if not cover:
            raise TableError(f"{table.path or 'latency table'}: no measurement covers kernel {kernel.describe()}; run `edgeprune "
                             "profile` for this model to add it")
        ci0, co0 = min(cover, key=lambda a: (a[0] * a[1], a))
    along_out = monotone([(p[1], p[2]) for p in pts if p[0] == ci0])
    along_in = monotone([(p[0], p[2]) for p in pts if p[1] == co0])
    a = proportional_floor(curve([x for x, _ in along_out], [y for _, y in along_out], co0, g, floor), co0)
    b = proportional_floor(curve([x for x, _ in along_in], [y for _, y in along_in], ci0, g, floor), ci0)
    m = max(min(a[co0], b[ci0]), 1e-9)  # the anchor, after both lines' staircases
    # off-axis points inside the measured span of both lines (below it the curves are extrapolated)
    lo_in, lo_out = min(x for x, _ in along_in), min(x for x, _ in along_out)
    off = [(p[0], p[1], p[2]) for p in pts
           if p[0] != ci0 and p[1] != co0 and lo_in <= p[0] <= ci0 and lo_out <= p[1] <= co0]
    return _Resolved(ci0, co0, a, b, m, tuple(sorted(along_out)), fit_kappa(off, a, b, m), floor)
