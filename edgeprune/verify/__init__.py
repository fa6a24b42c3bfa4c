"""Parity of exported artifacts against PyTorch, and the export manifest."""

from edgeprune.verify.parity import TOLERANCES, ParityResult, Tolerance, compare_outputs

__all__ = ["TOLERANCES", "ParityResult", "Tolerance", "compare_outputs"]
