"""Export orchestration: formats x one precision -> artifacts + parity + manifest.json.

    >>> from edgeprune.export import export_model, verify_dir
    >>> m = export_model(module, parse_inputs("1x3x32x32"), ["onnx", "tflite"], "fp32", "out/")  # doctest: +SKIP
    >>> verify_dir("out/").passed                                                              # doctest: +SKIP
    True

One format failing (an unsupported operator, a converter crash) is recorded in the manifest with
the format, operator and first line of the error; the other formats' artifacts are kept. Callers
(the CLI, the build pipeline) decide to exit non-zero from `Manifest.failed`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from edgeprune.errors import DataSpecError, EdgepruneError, ExportError, VerificationError
from edgeprune.exporters._common import first_line, operator_in
from edgeprune.exporters.base import Precision, exporter_names, get_exporter, parse_precision
from edgeprune.files import atomic_write_bytes, atomic_write_json, path_size, read_json, sha256_path
from edgeprune.models.inputs import InputSpec, example_inputs

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SCHEMA = "edgeprune.export-manifest"
SCHEMA_VERSION = 1
VERIFY_SAMPLES = 4  # inputs per parity check on seeded random data
VERIFY_SAMPLES_REAL = 16  # with a real dataset: held-out images, enough for a top-1 agreement figure

# which formats can take which precision (the exporters' own `precisions`, without importing them)
FORMAT_PRECISIONS: dict[str, tuple[str, ...]] = {
    "onnx": ("fp32", "int8"),
    "executorch": ("fp32", "int8"),
    "tflite": ("fp32", "fp16", "int8"),
    "coreml": ("fp32", "fp16", "int8"),
    "tensorrt": ("fp32", "fp16", "int8"),
}
# int8 paths that calibrate activations (Core ML int8 is weight-only: no data needed)
NEEDS_CALIBRATION = {"onnx", "executorch", "tflite", "tensorrt"}
_TOOLS = {
    "onnx": ("torch", "onnx", "onnxscript", "onnxruntime"),
    "executorch": ("torch", "executorch", "torchao"),
    "tflite": ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "torchao"),
    "coreml": ("torch", "coremltools"),
    "tensorrt": ("torch", "onnx", "onnxscript", "onnxruntime", "tensorrt"),
}


@dataclass
class Manifest:
    """What `export_model` wrote: the parsed manifest.json plus its directory."""

    out_dir: Path
    data: dict

    @property
    def artifacts(self) -> list[dict]:
        return self.data["artifacts"]

    @property
    def failed(self) -> list[dict]:
        """Artifacts that did not export, or exported without passing parity."""
        return [a for a in self.artifacts if a["status"] in ("failed", "parity_failed")]

    def to_json(self) -> dict:
        return self.data


@dataclass
class VerifyRow:
    format: str
    precision: str
    file: str | None
    status: str  # ok | hash_mismatch | missing | parity_failed | not_exported | structural_failed
    detail: str = ""
    parity: dict | None = None


@dataclass
class VerifyReport:
    out_dir: Path
    rows: list[VerifyRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.status in ("ok", "not_exported", "skipped") for r in self.rows) and any(r.status == "ok" for r in self.rows)

    @property
    def problems(self) -> list[VerifyRow]:
        return [r for r in self.rows if r.status not in ("ok", "not_exported", "skipped")]

    def to_json(self) -> dict:
        return {"dir": str(self.out_dir), "passed": self.passed, "rows": [r.__dict__ for r in self.rows]}


def parse_formats(text: str | Sequence[str]) -> tuple[list[str], bool]:
    """'onnx,tflite' or 'all' -> (formats, explicit). Unknown names are a user error listing what exists."""
    items = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text) if s and s.strip()]
    if not items:
        raise EdgepruneError(f"--format is empty; use one or more of {', '.join(exporter_names())}, or all")
    if "all" in items:
        return list(exporter_names()), False
    unknown = [f for f in items if f not in exporter_names()]
    if unknown:
        raise EdgepruneError(f"unknown export format '{unknown[0]}'; available: {', '.join(exporter_names())}, all")
    return list(dict.fromkeys(items)), True


def tool_versions(fmt: str) -> dict[str, str]:
    out = {}
    for dist in _TOOLS.get(fmt, ("torch",)):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _as_tuple(batch) -> tuple:
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def export_model(module, input_specs: Sequence[InputSpec], formats: str | Sequence[str], precision: str | Precision,
                 out_dir: str | Path, *, calibration: Sequence | None = None, verify_inputs: Sequence | None = None,
                 model_spec: str | None = None, weights: str | None = None, threads: int = 2,
                 calibration_source: str | None = None) -> Manifest:
    """Export `module` to each format at one precision, check parity on this host, write manifest.json.

    calibration: batches for int8 (each a tensor, or a tuple of tensors for multi-input models).
    verify_inputs: parity inputs (same form); default: up to 4 calibration batches, else seeded random.
    formats: names or "all"; with "all", formats lacking `precision` are recorded as skipped, while
    naming such a format explicitly is an error.
    """
    import torch

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgepruneError(f"--out {out_dir} exists and is not a directory")
    precision = parse_precision(precision.value if isinstance(precision, Precision) else precision)
    prec = precision.value
    fmts, explicit = parse_formats(formats)
    specs = tuple(input_specs)
    if explicit:
        bad = [f for f in fmts if prec not in FORMAT_PRECISIONS.get(f, (prec,))]
        if bad:
            raise EdgepruneError(f"{bad[0]} export has no {prec}; {bad[0]} supports {', '.join(FORMAT_PRECISIONS[bad[0]])}")
    calib = tuple(_as_tuple(b) for b in (calibration or ()))
    if precision is Precision.INT8 and not calib and any(f in NEEDS_CALIBRATION for f in fmts):
        raise DataSpecError("int8 needs calibration data; pass --calib fashion-mnist (or imagefolder:PATH) "
                            "with --calib-batches N, or --calib-random to calibrate on noise")
    for b in calib:
        if len(b) != len(specs) or any(tuple(t.shape) != s.shape for t, s in zip(b, specs)):
            raise DataSpecError(f"calibration batch shapes {[tuple(t.shape) for t in b]} do not match --input "
                                f"{','.join(str(s) for s in specs)}")

    example = example_inputs(specs, seed=0)
    if verify_inputs is not None:
        samples = [_as_tuple(b) for b in verify_inputs]
    elif calib:
        samples = list(calib[:VERIFY_SAMPLES])
    else:
        samples = [example_inputs(specs, seed=s) for s in range(VERIFY_SAMPLES)]
    with torch.no_grad():
        try:
            ref_out = [_outputs(module(*s)) for s in samples]
        except Exception as e:
            raise EdgepruneError(f"the model fails on inputs {','.join(str(s) for s in specs)} in PyTorch "
                                 f"({first_line(e)}); check --input") from None
    np_inputs = [[t.detach().cpu().numpy() for t in s] for s in samples]

    out_dir.mkdir(parents=True, exist_ok=True)
    data = _start_manifest(out_dir, specs, model_spec, weights, module, [(f, prec) for f in fmts])
    # named by content, so artifacts kept from an earlier run into this DIR keep their own reference
    ref_name, ref_sha = _write_reference(out_dir, prec, np_inputs, ref_out)
    data["references"][ref_name] = {"sha256": ref_sha, "samples": len(samples),
                                    "source": calibration_source or ("calibration batches" if calib and verify_inputs is None
                                                                    else "given" if verify_inputs is not None else "random (seeded)")}
    manifest = Manifest(out_dir, data)
    from edgeprune import progress
    from edgeprune.exporters.base import ExportOptions

    vacuous = None
    if not any(o.any() for out in ref_out for o in out):
        # an artifact that returns zeros would pass: parity holds but says nothing about the numerics
        vacuous = ("the PyTorch outputs are all zeros on the parity inputs (a zero-initialized output layer, "
                   "e.g. an untrained torchvision ViT head?), so parity cannot tell this artifact's numerics; "
                   "export with trained weights (--weights) to check them")
        data["references"][ref_name]["all_zero"] = True
        progress.warn(vacuous)

    for fmt in fmts:
        entry: dict[str, Any] = {"format": fmt, "precision": prec, "status": "failed", "file": None,
                                 "tools": tool_versions(fmt), "reference": ref_name, "notes": []}
        data["artifacts"].append(entry)
        if prec not in FORMAT_PRECISIONS.get(fmt, (prec,)):
            entry.update(status="skipped", notes=[f"{fmt} has no {prec}"])
            atomic_write_json(out_dir / MANIFEST, data)
            continue
        t0 = time.perf_counter()
        try:
            exporter = get_exporter(fmt)
            path = out_dir / f"model_{fmt}_{prec}{exporter.suffix}"
            with progress.status(f"exporting {fmt} {prec}..."):
                art = exporter.export(module, example, path, ExportOptions(precision=precision, calibration=calib))
        except ExportError as e:
            entry.update(error=str(e), operator=e.operator, export_seconds=round(time.perf_counter() - t0, 2))
            log.info("%s %s failed: %s", fmt, prec, e)
            atomic_write_json(out_dir / MANIFEST, data)
            continue
        except Exception as e:  # a converter crash is a failure of this format, not of the whole run
            log.debug("%s export crashed", fmt, exc_info=True)
            entry.update(error=f"{fmt} export failed: {first_line(e)}", operator=operator_in(e),
                         export_seconds=round(time.perf_counter() - t0, 2))
            atomic_write_json(out_dir / MANIFEST, data)
            continue
        for note in art.notes:  # a fallback path was taken: say so on the terminal too, not only in the manifest
            if "exporter failed" in note or "path failed" in note:
                progress.warn(f"{fmt} {prec}: {note}")
        entry.update(status="ok", file=art.path.name, sha256=sha256_path(art.path), size_bytes=path_size(art.path),
                     export_seconds=round(time.perf_counter() - t0, 2), notes=list(art.notes), details=art.details,
                     side_files=[{"file": p.name, "sha256": sha256_path(p), "size_bytes": path_size(p)}
                                 for p in art.side_files])
        with progress.status(f"checking {fmt} {prec} parity..."):
            parity = check_parity(fmt, art.path, np_inputs, ref_out, prec, threads, specs)
        entry["parity"] = parity
        if not parity.get("passed"):
            entry["status"] = "parity_failed"
        elif vacuous:
            entry["notes"].append("parity vacuous: " + vacuous)
        atomic_write_json(out_dir / MANIFEST, data)
    data["complete"] = True
    data["finished"] = _now()
    atomic_write_json(out_dir / MANIFEST, data)
    used = {a.get("reference") for a in data["artifacts"]}
    for stale in out_dir.glob("reference_*.npz"):  # references no artifact points to any more
        if stale.name not in used:
            stale.unlink(missing_ok=True)
    return manifest


def export_model_spec(model_spec: str, *, input_text: str | None, formats: str | Sequence[str], precision: str,
                      out_dir: str | Path, weights: str | None = None, calib: str | None = None, calib_batches: int = 8,
                      calib_random: bool = False, threads: int = 2) -> dict:
    """MODEL spec + --input text + calibration spec -> export; returns the manifest as a dict.

    With a calibration spec, int8 calibrates on the first `calib_batches` batches and parity uses
    the next ones (held out); `calib_random` allows noise instead of data.
    """
    from edgeprune.data import calibration_batches
    from edgeprune.models import load_model_with_inputs

    loaded, specs = load_model_with_inputs(model_spec, input_text, weights)
    prec = parse_precision(precision)
    if calib_random and not calib:
        calib = "random"
    if calib and calib != "random" and len(specs) != 1:
        raise DataSpecError("calibration datasets feed single-input models; for several inputs use --calib-random")
    calibration, verify, source = None, None, None
    fmts, _ = parse_formats(formats)
    if calib and (prec is Precision.INT8 or calib != "random"):
        n_verify = VERIFY_SAMPLES if calib == "random" else VERIFY_SAMPLES_REAL
        batches = calibration_batches(calib, specs[0], n_batches=calib_batches + n_verify, allow_random=calib_random)
        if calib == "random" and len(specs) > 1:
            batches = [example_inputs(specs, seed=100 + i) for i in range(calib_batches)]
        if len(batches) > calib_batches:
            calibration, verify = batches[:calib_batches], batches[calib_batches:]
            source = f"{calib}: {len(verify)} batches held out from calibration"
        else:
            calibration, verify = batches, batches[:n_verify]
            source = f"{calib}: calibration batches (too few to hold some out)"
        if prec is not Precision.INT8:
            calibration = None
    elif prec is Precision.INT8 and any(f in NEEDS_CALIBRATION for f in fmts):
        raise DataSpecError("int8 needs calibration data; pass --calib fashion-mnist (or imagefolder:PATH) "
                            "with --calib-batches N, or --calib-random to calibrate on noise")
    m = export_model(loaded.module, specs, formats, prec, out_dir, calibration=calibration, verify_inputs=verify,
                     model_spec=model_spec, weights=weights, threads=threads, calibration_source=source)
    if calib:
        m.data["calibration"] = {"spec": calib, "batches": calib_batches if prec is Precision.INT8 else 0}
        atomic_write_json(Path(out_dir) / MANIFEST, m.data)
    return m.data


def check_parity(fmt: str, path: Path, np_inputs: list[list], ref_out: list[list], precision: str, threads: int,
                 specs: Sequence[InputSpec]) -> dict:
    """Run the artifact on this host's runtime and compare; Core ML off macOS is checked structurally."""
    from edgeprune.runtimes import FORMAT_RUNTIME
    from edgeprune.verify.parity import compare_outputs, run_artifact

    if fmt == "coreml":
        from edgeprune.runtimes.coreml import can_predict

        if not can_predict():
            from edgeprune.exporters.coreml import check_structure

            try:
                return check_structure(path, [s.shape for s in specs], [o.shape for o in ref_out[0]])
            except EdgepruneError as e:
                return {"method": "structural", "passed": False, "error": str(e)}
        runtime = "coreml"
    else:
        runtime = FORMAT_RUNTIME.get(fmt)
    if runtime is None:
        return {"method": "none", "passed": True, "note": f"no runtime for {fmt} on this host"}
    try:
        if fmt == "coreml":
            from edgeprune.runtimes import get_runtime

            session = get_runtime("coreml").load(path, threads=threads)
            actual = [[o.copy() for o in session.run(s)] for s in np_inputs]
        else:
            actual = run_artifact(fmt, path, np_inputs, threads=threads)
    except Exception as e:
        return {"method": runtime, "passed": False, "error": f"{runtime} failed to run the artifact: {first_line(e)}"}
    result = compare_outputs(ref_out, actual, precision).to_json()
    note = " (the ONNX the engine is built from; the engine itself runs only on the target)" if fmt == "tensorrt" else ""
    return {"method": f"{runtime}{note}", **result}


def verify_dir(path: str | Path, threads: int = 2) -> VerifyReport:
    """Re-check every artifact in an export directory: sha256 of files and references, then parity.

    Works without the original model: the reference inputs/outputs are stored in DIR (.npz).
    """
    import numpy as np

    out_dir = Path(path)
    if not out_dir.is_dir():
        raise VerificationError(f"export directory not found: {out_dir}")
    data = read_json(out_dir / MANIFEST, "export manifest")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise VerificationError(f"{out_dir / MANIFEST} is not an edgeprune export manifest; re-run edgeprune export")
    if data.get("version") != SCHEMA_VERSION:
        raise VerificationError(f"{out_dir / MANIFEST} has manifest version {data.get('version')}, this edgeprune reads "
                                f"{SCHEMA_VERSION}; re-run edgeprune export")
    if not data.get("complete"):
        raise VerificationError(f"the export in {out_dir} did not finish (manifest marked incomplete); re-run edgeprune export")
    specs = [InputSpec.from_json(d) for d in data["inputs"]]
    report = VerifyReport(out_dir)
    refs: dict[str, tuple | str] = {}
    for a in data["artifacts"]:
        row = VerifyRow(a["format"], a["precision"], a.get("file"), "ok")
        report.rows.append(row)
        if a["status"] in ("failed", "skipped"):
            row.status = "not_exported" if a["status"] == "failed" else "skipped"
            row.detail = a.get("error") or "; ".join(a.get("notes", []))
            continue
        f = out_dir / a["file"]
        if not f.exists():
            row.status, row.detail = "missing", f"{a['file']} is missing"
            continue
        if sha256_path(f) != a["sha256"]:
            row.status, row.detail = "hash_mismatch", f"{a['file']} sha256 differs from the manifest: corrupted or modified"
            continue
        bad_side = [s["file"] for s in a.get("side_files", []) if not (out_dir / s["file"]).exists()
                    or sha256_path(out_dir / s["file"]) != s["sha256"]]
        if bad_side:
            row.status, row.detail = "hash_mismatch", f"side file {bad_side[0]} is missing or modified"
            continue
        ref_name = a["reference"]
        if ref_name not in refs:
            refs[ref_name] = _load_reference(out_dir, ref_name, data["references"].get(ref_name, {}).get("sha256"), np)
        ref = refs[ref_name]
        if isinstance(ref, str):
            row.status, row.detail = "hash_mismatch", ref
            continue
        np_inputs, ref_out = ref
        parity = check_parity(a["format"], f, np_inputs, ref_out, a["precision"], threads, specs)
        row.parity = parity
        if not parity.get("passed"):
            row.status = "parity_failed"
            row.detail = parity.get("error") or "; ".join(parity.get("problems", [])) or _parity_line(parity)
        else:
            row.detail = _parity_line(parity)
    return report


def _parity_line(p: dict) -> str:
    if "max_abs_diff" not in p:
        return p.get("method", "")
    top1 = f", top-1 {p['top1_agreement']:.0%}" if p.get("top1_agreement") is not None else ""
    return f"max |diff| {p['max_abs_diff']:.2e}, rel {p['rel_error']:.2e}, cos {p['cosine']:.6f}{top1}"


def artifact_bytes(entry: dict) -> int:
    """What an artifact weighs on the device: its file plus the files that ship with it (an ONNX model's
    external weights, over 2 GB, live in a side file)."""
    return (entry.get("size_bytes") or 0) + sum(s.get("size_bytes") or 0 for s in entry.get("side_files", []))


def _outputs(y) -> list:
    import torch

    if isinstance(y, torch.Tensor):
        return [y.detach().cpu().numpy()]
    if isinstance(y, (tuple, list)):
        out = []
        for t in y:
            out += _outputs(t)
        return out
    if isinstance(y, dict):
        return _outputs(list(y.values()))
    if hasattr(y, "to_tuple"):  # diffusers / transformers output objects
        return _outputs(y.to_tuple())
    raise EdgepruneError(f"the model returns {type(y).__name__}; export needs tensors (or tuples of tensors)")


def _write_reference(out_dir: Path, prec: str, np_inputs: list[list], ref_out: list[list]) -> tuple[str, str]:
    """Write the parity inputs + PyTorch outputs as reference_<precision>_<sha256 prefix>.npz."""
    import numpy as np

    arrays = {}
    for s, (ins, outs) in enumerate(zip(np_inputs, ref_out)):
        arrays.update({f"in_{s}_{k}": x for k, x in enumerate(ins)})
        arrays.update({f"out_{s}_{k}": y for k, y in enumerate(outs)})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    name = f"reference_{prec}_{sha[:12]}.npz"
    atomic_write_bytes(out_dir / name, data)
    return name, sha


def _load_reference(out_dir: Path, name: str, sha: str | None, np):
    p = out_dir / name
    if not p.exists():
        return f"reference data {name} is missing; re-run edgeprune export"
    if sha and sha256_path(p) != sha:
        return f"reference data {name} sha256 differs from the manifest: corrupted or modified"
    try:
        with np.load(p, allow_pickle=False) as z:
            n = 1 + max(int(k.split("_")[1]) for k in z.files)
            ins = [[z[k] for k in sorted((k for k in z.files if k.startswith(f"in_{s}_")), key=lambda k: int(k.rsplit("_", 1)[1]))]
                   for s in range(n)]
            outs = [[z[k] for k in sorted((k for k in z.files if k.startswith(f"out_{s}_")), key=lambda k: int(k.rsplit("_", 1)[1]))]
                    for s in range(n)]
    except Exception as e:
        return f"reference data {name} cannot be read ({first_line(e)}); re-run edgeprune export"
    return ins, outs


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _start_manifest(out_dir: Path, specs, model_spec, weights, module, replacing: list[tuple[str, str]]) -> dict:
    """A new manifest (complete=false until the end); keeps other (format, precision) entries of the same model."""
    from edgeprune import __version__

    kept, refs = [], {}
    old_path = out_dir / MANIFEST
    if old_path.exists():
        try:
            old = read_json(old_path, "export manifest")
            same = (old.get("schema") == SCHEMA and old.get("version") == SCHEMA_VERSION
                    and old.get("model", {}).get("spec") == model_spec and old.get("inputs") == [s.to_json() for s in specs])
            if same:
                kept = [a for a in old.get("artifacts", []) if (a["format"], a["precision"]) not in replacing]
                refs = {k: v for k, v in old.get("references", {}).items() if any(a.get("reference") == k for a in kept)}
        except EdgepruneError:
            pass
    try:
        params = int(sum(p.numel() for p in module.parameters()))
    except Exception:
        params = None
    data = {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "complete": False, "edgeprune": __version__, "created": _now(),
        "model": {"spec": model_spec, "weights": weights, "params": params, "class": type(module).__name__},
        "inputs": [s.to_json() for s in specs],
        "host": {"platform": platform.platform(), "machine": platform.machine(), "python": sys.version.split()[0]},
        "references": refs,
        "artifacts": kept,
    }
    atomic_write_json(out_dir / MANIFEST, data)
    return data
