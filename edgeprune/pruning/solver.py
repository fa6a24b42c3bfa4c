"""Choose how many channels each group keeps: maximize kept importance under a latency budget.

The exact core is a multiple-choice knapsack (one option per group, additive costs) solved by
dynamic programming over Pareto frontiers of (cost, value). End-to-end latency is not additive
(a layer's cost depends on its producer's width too), so `knapsack_plan` linearizes the
predictor around the current plan, solves, re-linearizes around the answer, and finally
repairs with the exact predictor: drop the cheapest importance per millisecond saved until the
budget holds, then add back whatever still fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from edgeprune.errors import PruningError

# frontier states kept per DP stage before costs are bucketed (exact below this size)
MAX_STATES = 20000


def solve_mckp(options: Sequence[Sequence[tuple[float, float]]], capacity: float) -> list[int] | None:
    """Pick one (cost, value) option per group maximizing total value with total cost <= capacity.

    Returns the chosen option index per group, or None when even the cheapest choice exceeds
    capacity. Exact while every frontier stays under MAX_STATES states.
    """
    n = len(options)
    if any(len(o) == 0 for o in options):
        raise ValueError("every group needs at least one option")
    min_rest = [0.0] * (n + 1)
    for g in range(n - 1, -1, -1):
        min_rest[g] = min_rest[g + 1] + min(c for c, _ in options[g])
    eps = 1e-9 * max(1.0, abs(capacity))
    if min_rest[0] > capacity + eps:
        return None
    frontier: list[tuple[float, float, tuple[int, ...]]] = [(0.0, 0.0, ())]
    for g, opts in enumerate(options):
        cand = [(c + oc, v + ov, ch + (j,)) for c, v, ch in frontier for j, (oc, ov) in enumerate(opts)
                if c + oc + min_rest[g + 1] <= capacity + eps]
        cand.sort(key=lambda s: (s[0], -s[1]))
        frontier, best = [], float("-inf")
        for s in cand:  # keep states that buy strictly more value than every cheaper state
            if s[1] > best:
                frontier.append(s)
                best = s[1]
        if len(frontier) > MAX_STATES:
            frontier = _bucket(frontier, capacity)
    return list(max(frontier, key=lambda s: (s[1], -s[0]))[2])


def _bucket(frontier, capacity):
    """Keep the best state per cost bucket (an approximation only for very large instances)."""
    lo = frontier[0][0]
    width = max(capacity - lo, 1e-12) / MAX_STATES
    kept: dict[int, tuple] = {}
    for s in frontier:
        b = int((s[0] - lo) / width)
        if b not in kept or s[1] > kept[b][1]:
            kept[b] = s
    return sorted(kept.values())


@dataclass
class Choice:
    """One group's options: candidate kept counts (ascending, last = unpruned) and their values."""

    name: str
    counts: list[int]
    values: list[float]


def knapsack_plan(choices: Sequence[Choice], latency: Callable[[dict[str, int]], float], budget_ms: float,
                  rounds: int = 4) -> dict[str, int]:
    """Kept count per group with latency(plan) <= budget_ms and the most kept value.

    `latency` maps {group name: kept count} to predicted ms (groups left out are unpruned).
    """
    full = {c.name: c.counts[-1] for c in choices}
    floor = {c.name: c.counts[0] for c in choices}
    reachable = latency(floor)
    if reachable > budget_ms:
        raise PruningError(f"target {budget_ms:.3f} ms is below the minimum reachable latency {reachable:.3f} ms "
                           f"(every prunable group at its smallest width); raise the target or lower the speedup")
    plan = dict(full)
    if latency(plan) <= budget_ms:
        return plan
    seen = []
    for _ in range(rounds):
        base = latency(plan)
        options = []
        for c in choices:
            row = []
            for k, v in zip(c.counts, c.values):
                trial = dict(plan)
                trial[c.name] = k
                row.append((latency(trial) - base, v))
            options.append(row)
        pick = solve_mckp(options, budget_ms - base)
        if pick is None:
            break
        new = {c.name: c.counts[j] for c, j in zip(choices, pick)}
        if new == plan or new in seen:
            plan = new
            break
        seen.append(new)
        plan = new
    return _repair(choices, plan, latency, budget_ms)


def _repair(choices, plan, latency, budget_ms):
    """Exact-predictor fix-up: shrink the cheapest groups until within budget, then grow what fits."""
    by_name = {c.name: c for c in choices}
    value = {c.name: dict(zip(c.counts, c.values)) for c in choices}
    plan = dict(plan)
    cur = latency(plan)
    while cur > budget_ms:
        best = None
        for name, k in plan.items():
            counts = by_name[name].counts
            i = counts.index(k)
            if i == 0:
                continue
            trial = {**plan, name: counts[i - 1]}
            t = latency(trial)
            saved = cur - t
            loss = value[name][k] - value[name][counts[i - 1]]
            score = loss / saved if saved > 1e-12 else float("inf")
            if best is None or score < best[0]:
                best = (score, trial, t)
        if best is None:  # cannot happen when the floor is within budget
            break
        _, plan, cur = best
    while True:
        best = None
        for name, k in plan.items():
            counts = by_name[name].counts
            i = counts.index(k)
            if i + 1 == len(counts):
                continue
            trial = {**plan, name: counts[i + 1]}
            t = latency(trial)
            if t > budget_ms:
                continue
            gain = value[name][counts[i + 1]] - value[name][k]
            score = gain / max(t - cur, 1e-12)
            if gain > 0 and (best is None or score > best[0]):
                best = (score, trial, t)
        if best is None:
            return plan
        _, plan, cur = best
