"""Device latency tables and the latency predictor built on them.

    >>> table = load_table("profiles/host/onnxruntime-fp32.json")   # doctest: +SKIP
    >>> lm = LatencyModel.build(model, specs, table)                  # doctest: +SKIP
    >>> lm.predict({"layer1.0.conv1": 48})                            # doctest: +SKIP
"""

from edgeprune.latency.builder import BuildReport, build_table
from edgeprune.latency.predictor import LatencyModel
from edgeprune.latency.table import LatencyTable, default_table_path, load_table

__all__ = ["BuildReport", "LatencyModel", "LatencyTable", "build_table", "default_table_path", "load_table"]
