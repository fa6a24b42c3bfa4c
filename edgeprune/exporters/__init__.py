"""Exporters: one module per format behind `exporters.base.Exporter`."""

from edgeprune.exporters.base import (
    Artifact, ExportOptions, Exporter, Precision, exporter_names, get_exporter, parse_precision, register_exporter,
)

__all__ = ["Artifact", "ExportOptions", "Exporter", "Precision", "exporter_names", "get_exporter",
           "parse_precision", "register_exporter"]
