"""edgeprune: latency tables measured on the device, pruning driven by them, verified export.

The public API is one verb per stage; everything else lives in its subpackage.
"""

from __future__ import annotations

__version__ = "0.1.0"

from edgeprune.errors import EdgepruneError  # noqa: E402
from edgeprune.models import load_model, parse_inputs  # noqa: E402

__all__ = ["EdgepruneError", "__version__", "load_model", "parse_inputs"]
