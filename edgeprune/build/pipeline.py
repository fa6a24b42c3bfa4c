"""Run a build: stages in order, each into its own folder, recorded in build.json.

A failed stage stops the run (non-zero exit, naming the stage); what earlier stages wrote is
kept. `resume=True` skips stages whose config (and everything before them) is unchanged and
whose outputs still exist.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from edgeprune.build.config import BuildConfig, stage_fingerprint
from edgeprune.build.stages import BuildContext
from edgeprune.errors import EdgepruneError
from edgeprune.files import atomic_write_json, read_json

MANIFEST = "build.json"
SCHEMA = "edgeprune.build"


@dataclass
class BuildResult:
    out: Path
    manifest: dict
    failed_stage: str | None = None
    error: str | None = None


def run_build(config: BuildConfig, out: str | Path, *, resume: bool = False) -> BuildResult:
    from edgeprune import __version__
    from edgeprune.progress import info, status

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = {}
    if resume and (out / MANIFEST).exists():
        old = read_json(out / MANIFEST, "build manifest")
        previous = {s["label"]: s for s in old.get("stages", []) if s.get("status") == "done"}
    manifest = {"schema": SCHEMA, "version": 1, "edgeprune": __version__, "config": config.to_json(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stages": [], "status": "running"}
    ctx = BuildContext(out=out, model_spec=config.model.spec, input_text=config.model.input, weights=config.model.weights)
    fp = ""
    result = BuildResult(out, manifest)
    for i, stage in enumerate(config.stages, 1):
        label = stage.label(i)
        fp = stage_fingerprint(stage, config.model, fp)
        stage_out = out / label
        old = previous.get(label)
        if old and old.get("fingerprint") == fp and stage_out.exists():
            _restore(ctx, old)
            manifest["stages"].append({**old, "resumed": True})
            info(f"[dim]skip[/dim] {label} (done in an earlier run)")
            continue
        entry = {"label": label, "type": stage.type, "config": dataclasses.asdict(stage), "fingerprint": fp,
                 "status": "running"}
        manifest["stages"].append(entry)
        atomic_write_json(out / MANIFEST, manifest)
        t0 = time.perf_counter()
        try:
            with status(f"stage {label}"):
                summary = stage.run(ctx, stage_out)
            entry.update(status="done", summary=summary, context=_context(ctx))
            if summary.get("failed"):
                entry["status"] = "failed"
                result.failed_stage, result.error = label, f"{summary['failed']} artifact(s) failed; see {stage_out}"
        except EdgepruneError as e:
            entry.update(status="failed", error=str(e))
            result.failed_stage, result.error = label, str(e)
        except Exception as e:  # a bug: keep the traceback in the manifest, say which stage
            entry.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
            result.failed_stage, result.error = label, f"internal error: {type(e).__name__}: {e}"
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        atomic_write_json(out / MANIFEST, manifest)
        info(f"{'[green]done[/green]' if entry['status'] == 'done' else '[red]FAILED[/red]'} {label} ({entry['seconds']} s)")
        if result.failed_stage:
            break
    manifest["status"] = "failed" if result.failed_stage else "done"
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_json(out / MANIFEST, manifest)
    from edgeprune.build.report import write_report

    write_report(out, manifest)
    return result


def _context(ctx: BuildContext) -> dict:
    return {"model_spec": ctx.model_spec, "weights": ctx.weights, "artifacts": list(ctx.artifacts), "table": ctx.table}


def _restore(ctx: BuildContext, old: dict) -> None:
    c = old.get("context", {})
    ctx.model_spec = c.get("model_spec", ctx.model_spec)
    ctx.weights = c.get("weights", ctx.weights)
    ctx.artifacts = list(c.get("artifacts", ctx.artifacts))
    ctx.table = c.get("table", ctx.table)
