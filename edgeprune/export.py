"""Verified export, the library entry points (the CLI, builds, pruning and the VAE student call these).

    export_model(module, input_specs, formats, precision, out_dir, *, calibration=None, verify_inputs=None,
                 model_spec=None, weights=None, threads=2) -> Manifest
    export_model_spec(model_spec, *, input_text, formats, precision, out_dir, weights=None, calib=None,
                      calib_batches=8, calib_random=False, threads=2) -> dict  (the manifest)
    verify_dir(path, threads=2) -> VerifyReport
"""

from edgeprune.exporters.pipeline import (
    MANIFEST, Manifest, VerifyReport, VerifyRow, artifact_bytes, export_model, export_model_spec, parse_formats, verify_dir,
)

__all__ = ["MANIFEST", "Manifest", "VerifyReport", "VerifyRow", "artifact_bytes", "export_model", "export_model_spec",
           "parse_formats", "verify_dir"]
