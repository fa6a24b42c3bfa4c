"""How steady is this host's timing? The noise floor under every latency table measured here.

Three micro-models (a 32-channel and an 8-channel 3x3 conv at 28x28, and a ReLU on 8 values: the
runtime's per-call cost) are exported to ONNX once and timed with ONNX Runtime on 1 thread in
windows of RUNS runs (the fastest run of each window is the statistic the tables keep), one window
after another for SECONDS seconds: first with the machine otherwise idle, then with one busy
process on another core (what a CI neighbour or a second job does).

Reported per micro-model and phase: the fastest window, the median window, the slowest, the share
of windows within 5% of the fastest ("fast state"), and how the three models' windows move
together (correlation with the 32-channel conv). A table point is one such window; when windows of
one kernel differ by 1.3x in minutes, a kernel sum cannot be trusted to a few % from single
windows, and ratios of models timed in the same rounds are what this host can measure.

    flock /tmp/edgeprune-bench.lock python bench/host_noise.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.results_io import environment, heading, table, write_results  # noqa: E402
RESULTS = ROOT / "bench" / "results"
RUNS = 50
FAST = 1.05


def _burn(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def _sessions(tmp: Path) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch

    from edgeprune.exporters.onnx import export_onnx_fp32

    models = {"conv32": (torch.nn.Conv2d(32, 32, 3, padding=1), (1, 32, 28, 28)),
              "conv8": (torch.nn.Conv2d(8, 8, 3, padding=1), (1, 8, 28, 28)),
              "call": (torch.nn.ReLU(), (1, 8))}
    out = {}
    for name, (m, shape) in models.items():
        path = tmp / f"{name}.onnx"
        export_onnx_fp32(m.eval(), (torch.randn(*shape),), path)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {s.get_inputs()[0].name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        out[name] = (lambda s=s, feed=feed: s.run(None, feed))
    return out


def _window(fn) -> float:
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(RUNS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def _phase(sessions: dict, seconds: float, busy: bool, progress) -> dict:
    burner = None
    if busy:
        burner = mp.get_context("spawn").Process(target=_burn, args=(time.time() + seconds + 5,), daemon=True)
        burner.start()
        time.sleep(0.5)
    series = {k: [] for k in sessions}
    t_end = time.time() + seconds
    while time.time() < t_end:
        for k, fn in sessions.items():
            series[k].append(_window(fn))
        progress()
        time.sleep(0.2)
    if burner is not None:
        burner.terminate()
        burner.join()
    return {k: _stats(v, series["conv32"]) for k, v in series.items()}


def _stats(xs: list[float], ref: list[float]) -> dict:
    lo = min(xs)
    return {"windows": len(xs), "fastest_ms": round(lo, 4), "median_ms": round(statistics.median(xs), 4),
            "slowest_ms": round(max(xs), 4), "median_over_fastest": round(statistics.median(xs) / lo, 3),
            "fast_state_share": round(sum(x <= FAST * lo for x in xs) / len(xs), 3),
            "corr_with_conv32": round(statistics.correlation(xs, ref), 3) if len(xs) > 2 else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    ap.add_argument("--out", default=str(RESULTS), help="results folder")
    args = ap.parse_args()
    if not args.seconds > 0:
        ap.error(f"--seconds must be positive (got {args.seconds:g}): each phase needs at least one window")
    os.environ.setdefault("EDGEPRUNE_QUIET", "1")
    import torch
    from rich.progress import Progress

    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp, Progress(transient=True) as bar:
        sessions = _sessions(Path(tmp))
        res = {}
        for phase, busy in (("idle", False), ("one busy core", True)):
            task = bar.add_task(f"{phase}: windows of {RUNS} runs", total=None)
            res[phase] = _phase(sessions, args.seconds, busy, lambda: bar.advance(task))
            bar.remove_task(task)
    env = environment(("onnxruntime", "torch", "numpy"))
    out = {"benchmark": "host_noise", "runs_per_window": RUNS, "seconds_per_phase": args.seconds, "threads": 1,
           **env, "phases": res}
    versions = env["versions"]
    lines = heading("Host timing noise", out,
                    f"ONNX Runtime {versions['onnxruntime']}, 1 thread. Each window = fastest of {RUNS} runs (a table "
                    f"point's statistic); windows back to back for {args.seconds:g} s per phase. Fast state: within "
                    f"{round(100 * (FAST - 1))}% of the fastest window.")
    lines += table(["phase", "model", "windows", "fastest ms", "median ms", "slowest ms", "median / fastest",
                    "fast-state share", "corr. with conv32"],
                   [[phase, k, s["windows"], s["fastest_ms"], s["median_ms"], s["slowest_ms"], s["median_over_fastest"],
                     s["fast_state_share"], s["corr_with_conv32"]] for phase, per in res.items() for k, s in per.items()])
    write_results(args.out, "host_noise", out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
