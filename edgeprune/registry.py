"""Name -> 'module:attribute' registries, imported on first use.

Exporters, runtimes, device transports and model-directory kinds each pull in a heavy optional
library (executorch, coremltools, paramiko-free ssh, diffusers...): a lazy path keeps
`edgeprune --help` fast and lets a missing extra fail only for the format that needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from edgeprune.errors import EdgepruneError


class LazyRegistry:
    def __init__(self, what: str, entries: dict[str, str], error: type[EdgepruneError] = EdgepruneError):
        self.what, self.error = what, error
        self._entries = dict(entries)

    def register(self, name: str, target: str) -> None:
        """Add or replace an entry; `target` is 'package.module:attribute', imported on first use."""
        if ":" not in target:
            raise ValueError(f"registry target must be 'module:attribute', got {target!r}")
        self._entries[name] = target

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def load(self, name: str, *, context: str = "", missing: Callable[[ImportError], EdgepruneError] | None = None):
        """The registered attribute; an unknown name or a missing optional package is a one-line user error."""
        if name not in self._entries:
            where = f"{context}: " if context else ""
            raise self.error(f"{where}unknown {self.what} '{name}'; known: {', '.join(self._entries)}")
        module_name, _, attr = self._entries[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            if missing is None:
                raise
            raise missing(e) from None
        return getattr(module, attr)
