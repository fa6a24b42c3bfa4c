"""Compare an artifact's outputs with PyTorch's on the same inputs.

Metrics, over all samples and outputs together (each output flattened):
  max_abs_diff   max |y - ref|
  rel_error      ||y - ref||_2 / ||ref||_2
  cosine         cos(y, ref), the flattened vectors
  top1_agreement share of samples whose argmax agrees (only for classifier-shaped outputs:
                 one output of shape (N, C) with C >= 2)
  ref_max_abs    max |ref|, the scale to read max_abs_diff against (not a check)

Pass/fail uses rel_error and cosine, with tolerances per precision (`TOLERANCES`, documented in
docs/export.md). max_abs_diff and top-1 agreement are reported, not gated: an int8 model of an
untrained network can flip near-ties in argmax while being a faithful quantization.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Tolerance:
    """An artifact passes when rel_error <= max_rel_error and cosine >= min_cosine."""

    max_rel_error: float
    min_cosine: float


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_rel_error=1e-3, min_cosine=0.99999),
    "fp16": Tolerance(max_rel_error=2e-2, min_cosine=0.999),
    "int8": Tolerance(max_rel_error=0.35, min_cosine=0.95),
}


@dataclass(frozen=True)
class ParityResult:
    max_abs_diff: float
    rel_error: float
    cosine: float
    top1_agreement: float | None
    ref_max_abs: float  # scale of the reference outputs, to read max_abs_diff against
    samples: int
    precision: str
    passed: bool
    tolerance: dict

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("max_abs_diff", "rel_error", "cosine", "top1_agreement", "ref_max_abs"):
            if isinstance(d[k], float) and math.isfinite(d[k]):
                d[k] = float(f"{d[k]:.6g}")
        return d

    def summary(self) -> str:
        top1 = f", top-1 {self.top1_agreement:.0%}" if self.top1_agreement is not None else ""
        return (f"{'ok' if self.passed else 'FAIL'}: max |diff| {self.max_abs_diff:.2e}, rel {self.rel_error:.2e}, "
                f"cos {self.cosine:.6f}{top1}")


def compare_outputs(reference: list[list], actual: list[list], precision: str) -> ParityResult:
    """`reference[s][k]` / `actual[s][k]`: sample s, output k (numpy arrays)."""
    import numpy as np

    if len(reference) != len(actual):
        raise ValueError(f"{len(actual)} samples vs {len(reference)} reference samples")
    ref_parts, act_parts, agree, classifier = [], [], 0, True
    for ref_s, act_s in zip(reference, actual):
        if len(ref_s) != len(act_s):
            return _shape_failure(precision, len(reference), f"{len(act_s)} outputs vs {len(ref_s)}")
        for r, a in zip(ref_s, act_s):
            r = np.asarray(r, dtype=np.float64)
            a = np.asarray(a, dtype=np.float64)
            if r.size != a.size:
                return _shape_failure(precision, len(reference), f"output shape {a.shape} vs {r.shape}")
            ref_parts.append(r.reshape(-1))
            act_parts.append(a.reshape(r.shape).reshape(-1))
        classifier = classifier and len(ref_s) == 1 and np.ndim(ref_s[0]) == 2 and np.shape(ref_s[0])[1] >= 2
        if classifier:
            r0 = np.asarray(ref_s[0])
            a0 = np.asarray(act_s[0]).reshape(r0.shape)
            agree += int((r0.argmax(1) == a0.argmax(1)).sum())
    ref = np.concatenate(ref_parts)
    act = np.concatenate(act_parts)
    diff = act - ref
    finite = bool(np.isfinite(act).all())
    max_abs = float(np.abs(diff).max()) if diff.size else 0.0
    ref_norm = float(np.linalg.norm(ref))
    rel = float(np.linalg.norm(diff) / ref_norm) if ref_norm > 0 else float(np.linalg.norm(diff))
    denom = ref_norm * float(np.linalg.norm(act))
    if denom > 0:
        cos = float(ref @ act / denom)
    else:  # one side is all zeros: they agree only if both are
        cos = 1.0 if ref_norm == 0 and not act.any() else 0.0
    n_rows = sum(np.shape(s[0])[0] for s in reference) if classifier else 0
    top1 = agree / n_rows if classifier and n_rows else None
    tol = TOLERANCES[precision]
    passed = finite and rel <= tol.max_rel_error and cos >= tol.min_cosine
    ref_max = float(np.abs(ref).max()) if ref.size else 0.0
    return ParityResult(max_abs, rel, cos, top1, ref_max, len(reference), precision, passed, asdict(tol))


def _shape_failure(precision: str, samples: int, why: str) -> ParityResult:
    return ParityResult(float("inf"), float("inf"), 0.0, None, float("nan"), samples, precision, False,
                        {**asdict(TOLERANCES[precision]), "error": why})


def run_artifact(format_name: str, path, inputs: list[list], threads: int | None = 2) -> list[list]:
    """Run every sample through the host runtime for `format_name`; returns outputs per sample."""
    from edgeprune.runtimes import FORMAT_RUNTIME, get_runtime

    runtime = FORMAT_RUNTIME.get(format_name)
    if runtime is None:
        raise KeyError(format_name)
    session = get_runtime(runtime).load(path, threads=threads)
    return [[o.copy() for o in session.run(sample)] for sample in inputs]
