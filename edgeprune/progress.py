"""The one place user-facing progress is drawn (rich, on stderr).

Library code calls `progress_bar` / `status`; when stderr is not a terminal (CI, tests) rich
falls back to plain, quiet output, so nothing here changes behaviour.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_console = None


def console():
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, quiet=os.environ.get("EDGEPRUNE_QUIET") == "1")
    return _console


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner for one slow step whose length is unknown (a conversion, a compile)."""
    c = console()
    if not c.is_terminal:
        yield
        return
    with c.status(message):
        yield


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """A progress bar over a loop with a known length."""
    c = console()
    if not c.is_terminal:
        yield from items
        return
    from rich.progress import track as rich_track

    yield from rich_track(items, description=description, total=total, console=c, transient=True)


def info(message: str) -> None:
    """One line for the user (not a log record)."""
    console().print(message, highlight=False)


def warn(message: str) -> None:
    console().print(f"[yellow]warning:[/yellow] {message}", highlight=False)
