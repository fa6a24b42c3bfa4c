"""Datasets by spec: built-in Fashion-MNIST, an ImageFolder, or a user factory."""

from edgeprune.data.specs import DataBundle, calibration_batches, resolve_data

__all__ = ["DataBundle", "calibration_batches", "resolve_data"]
