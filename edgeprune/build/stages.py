"""Build stage types. Each is a frozen dataclass (its fields are the TOML keys) with `run(ctx)`.

A stage returns a plain-JSON summary; the pipeline records it in build.json and the report.
Stages only chain library calls; the work lives in the capability packages.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edgeprune.errors import ConfigError


@dataclass
class BuildContext:
    """What flows between stages: the current model (a spec; prune replaces it) and artifacts."""

    out: Path
    model_spec: str
    input_text: str | None
    weights: str | None
    artifacts: list[dict] = field(default_factory=list)
    table: str | None = None  # the latency table an earlier profile stage built

    def load(self):
        from edgeprune.cli.common import load_with_inputs

        return load_with_inputs(self.model_spec, self.input_text, self.weights)


class _Stage:
    type: ClassVar[str]

    def label(self, index: int) -> str:
        return getattr(self, "name", None) or f"{index:02d}-{self.type}"


@dataclass(frozen=True)
class InfoStage(_Stage):
    """Record parameters and MACs of the current model."""

    type: ClassVar[str] = "info"
    name: str | None = None

    def run(self, ctx: BuildContext, out: Path) -> dict:
        from edgeprune.models.summary import summarize_model

        loaded, specs = ctx.load()
        s = summarize_model(loaded.module, specs)
        return {"params": s["params"], "macs": s["macs"], "layers": len(s["layers"])}


@dataclass(frozen=True)
class ProfileStage(_Stage):
    """Build (or resume) the latency table of the current model on a device; later prune stages use it."""

    type: ClassVar[str] = "profile"
    device: str = "host"
    runtime: str = "onnxruntime"
    precision: str = "fp32"
    threads: int | None = None
    granularity: int = 8
    budget_s: float = 600.0
    validate: int = 0
    table: str | None = None  # where to keep the table (default: inside this stage's output folder)
    name: str | None = None

    def run(self, ctx: BuildContext, out: Path) -> dict:
        from edgeprune.latency import build_table

        loaded, specs = ctx.load()
        path = Path(self.table) if self.table else out / f"{self.runtime}-{self.precision}.json"
        out.mkdir(parents=True, exist_ok=True)
        report = build_table(loaded.module, specs, device=self.device, runtime=self.runtime, precision=self.precision,
                             threads=self.threads, out=path, granularity=self.granularity, budget_s=self.budget_s,
                             validate=self.validate, model_name=ctx.model_spec, progress=True)
        ctx.table = str(path)
        return {"table": str(path), **report.to_json()}


@dataclass(frozen=True)
class PruneStage(_Stage):
    """Prune the current model against a latency table; later stages use the pruned model."""

    type: ClassVar[str] = "prune"
    table: str = ""
    method: str = "knapsack"
    target_latency_ms: float | None = None
    speedup: float | None = None
    data: str | None = None
    data_limit: int | None = None  # fine-tune on the first N training samples (a quick build)
    epochs: int = 0
    importance: str | None = None
    balance: float = 0.0  # no group below this share of its width in the uniform plan (edgeprune prune --balance)
    lr: float | None = None  # the fine-tune's peak learning rate (edgeprune prune --lr; None: the default)
    ignore: tuple[str, ...] = ()
    # false: a missed latency promise is reported (the pruned model is kept and later stages run)
    # instead of failing the build; for demos on shared machines, where sub-ms timings are noisy
    strict: bool = True
    name: str | None = None

    def __post_init__(self):
        if (self.target_latency_ms is None) == (self.speedup is None):
            raise ConfigError("prune needs exactly one of 'target_latency_ms' or 'speedup'")
        if self.data_limit is not None and self.data_limit < 1:
            raise ConfigError("prune 'data_limit' must be a positive number of samples")
        if not 0.0 <= self.balance <= 1.0:
            raise ConfigError(f"prune 'balance' must be in [0, 1] (got {self.balance})")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"prune 'lr' must be a positive learning rate, e.g. 0.05 (got {self.lr!r})")

    def run(self, ctx: BuildContext, out: Path) -> dict:
        table = self.table or ctx.table
        if not table:
            raise ConfigError("prune needs 'table' (a latency table built with edgeprune profile) or a profile stage before it")
        from edgeprune.errors import LatencyPromiseError
        from edgeprune.pruning import prune_model_spec

        try:
            result = prune_model_spec(
                ctx.model_spec, input_text=ctx.input_text, weights=ctx.weights, table=table,
                method=self.method, target_latency_ms=self.target_latency_ms, speedup=self.speedup,
                data=self.data, data_limit=self.data_limit, epochs=self.epochs, importance=self.importance,
                ignore=self.ignore, out=out, balance=self.balance, lr=self.lr,
            )
        except LatencyPromiseError as e:
            if self.strict:
                raise
            result = {**json.loads((out / "prune.json").read_text()), "promise_missed": str(e)}
        ctx.model_spec, ctx.weights = str(out), None
        return {"model_dir": str(out), **result}


@dataclass(frozen=True)
class ExportStage(_Stage):
    """Export the current model to one or more formats and check parity on this host's runtimes."""

    type: ClassVar[str] = "export"
    formats: tuple[str, ...] = ("onnx",)
    precision: str = "fp32"
    calib: str | None = None
    calib_batches: int = 8
    calib_random: bool = False
    name: str | None = None

    def run(self, ctx: BuildContext, out: Path) -> dict:
        from edgeprune.exporters.pipeline import export_model_spec

        manifest = export_model_spec(
            ctx.model_spec, input_text=ctx.input_text, weights=ctx.weights, formats=list(self.formats),
            precision=self.precision, calib=self.calib, calib_batches=self.calib_batches,
            calib_random=self.calib_random, out_dir=out,
        )
        arts = [{**a, "dir": str(out)} for a in manifest["artifacts"]]
        ctx.artifacts.extend(arts)
        failed = [a for a in arts if a.get("status") not in (None, "ok")]
        return {"export_dir": str(out), "artifacts": arts, "failed": len(failed)}


@dataclass(frozen=True)
class BenchStage(_Stage):
    """Time every artifact exported so far on a device (those its runtimes can run)."""

    type: ClassVar[str] = "bench"
    device: str = "host"
    threads: int | None = None
    runs: int = 50
    name: str | None = None

    def __post_init__(self):
        if self.runs < 1:
            raise ConfigError("bench 'runs' must be at least 1")

    def run(self, ctx: BuildContext, out: Path) -> dict:
        from edgeprune.devices import BenchSettings, get_runner, load_device
        from edgeprune.runtimes import FORMAT_RUNTIME

        device = load_device(self.device)
        runner = get_runner(device)
        rows = []
        try:
            for a in ctx.artifacts:
                runtime = FORMAT_RUNTIME.get(a["format"])
                path = Path(a["dir"]) / a["file"] if a.get("file") else None
                where = {"format": a["format"], "precision": a["precision"], "stage": Path(a["dir"]).name}
                if a.get("status", "ok") != "ok" or runtime not in device.runtimes or path is None or not path.is_file():
                    rows.append({**where, "skipped":
                                 f"{device.name} has no runtime for {a['format']}" if runtime not in device.runtimes else "no artifact"})
                    continue
                settings = BenchSettings(threads=self.threads or device.threads, min_runs=self.runs, max_runs=self.runs,
                                         max_seconds=60.0)
                r = runner.bench(path, runtime, settings)
                rows.append({**where, "runtime": runtime,
                             **{k: round(v, 4) if isinstance(v, float) else v for k, v in r.timing.to_json().items()},
                             "warnings": r.warnings})
        finally:
            runner.close()
        return {"device": device.name, "results": rows}


STAGES: dict[str, type] = {cls.type: cls for cls in (InfoStage, ProfileStage, PruneStage, ExportStage, BenchStage)}


def describe_stages() -> dict[str, Any]:
    """Every stage type with its keys, defaults and docs (for `edgeprune build --describe`)."""
    out = {}
    for name, cls in STAGES.items():
        out[name] = {
            "doc": (cls.__doc__ or "").strip(),
            "keys": {f.name: (None if f.default is dataclasses.MISSING else f.default) for f in dataclasses.fields(cls)},
        }
    return out
