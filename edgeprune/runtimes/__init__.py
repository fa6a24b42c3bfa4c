"""Runtimes on this host: ONNX Runtime, ExecuTorch (XNNPACK), LiteRT."""

from edgeprune.runtimes.base import FORMAT_RUNTIME, Runtime, Session, get_runtime, register_runtime, runtime_names

__all__ = ["FORMAT_RUNTIME", "Runtime", "Session", "get_runtime", "register_runtime", "runtime_names"]
