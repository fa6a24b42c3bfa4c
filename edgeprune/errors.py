"""Two kinds of failure: user errors (EdgepruneError) and bugs (everything else).

An EdgepruneError message is written for the person at the terminal: what went wrong and
how to fix it, on one line. The CLI prints it without a traceback and exits non-zero.
"""

from __future__ import annotations


class EdgepruneError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class ModelSpecError(EdgepruneError):
    """The model spec cannot be resolved to an nn.Module."""


class InputSpecError(EdgepruneError):
    """An --input shape string is malformed."""


class DataSpecError(EdgepruneError):
    """A dataset / calibration spec cannot be resolved."""


class ExportError(EdgepruneError):
    """A model could not be converted to one format.

    `format` and `operator` say where; other formats' artifacts are kept.
    """

    def __init__(self, message: str, *, format: str | None = None, operator: str | None = None):
        super().__init__(message)
        self.format = format
        self.operator = operator


class VerificationError(EdgepruneError):
    """An artifact failed its hash or parity check."""


class TableError(EdgepruneError):
    """A latency table is missing, corrupted, or from another device."""


class DeviceError(EdgepruneError):
    """A device descriptor is invalid or the device cannot be reached."""


class PruningError(EdgepruneError):
    """A pruning request cannot be satisfied (budget unreachable, nothing prunable...)."""


class LatencyPromiseError(PruningError):
    """The pruned model was written, but the host measured it slower than the table promised."""


class ConfigError(EdgepruneError):
    """A build/config file is invalid."""


class InternalError(RuntimeError):
    """A bug in edgeprune, not in the user's input."""
