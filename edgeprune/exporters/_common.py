"""Helpers the exporters share: error text, operator extraction, quiet third-party converters."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


_OP_PATTERNS = (
    r"Lowering not found: (\S+)",
    r"Unsupported fx node (\w+)",
    r"(aten::?[A-Za-z_][\w.]*)",
    r"(torch\.ops\.[\w.]+)",
    r"(aten\.[A-Za-z_][\w.]*)",
    r"[Oo]p(?:erator)?[ :]+'?([A-Za-z_][\w.:]+)'?",
)


def operator_in(e: BaseException) -> str | None:
    """The operator an exporter error names, when it names one."""
    text = str(e)
    for pat in _OP_PATTERNS:
        m = re.search(pat, text)
        if m:
            return m.group(1)
    return None


@contextlib.contextmanager
def quiet_converters() -> Iterator[None]:
    """Silence warnings, prints, progress bars and logs of the converters for the duration of a conversion."""
    names = ("torch", "torch.export", "torch._export", "executorch", "coremltools", "absl", "litert_torch", "root",
             "onnxscript", "torchao")
    old = {n: logging.getLogger(n).level for n in names}
    old_env = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        for n in names:
            if logging.getLogger(n).level < logging.CRITICAL:
                logging.getLogger(n).setLevel(logging.CRITICAL)  # failures come back as exceptions
        # converters print graphs and progress bars straight to sys.stdout/sys.stderr; failures come
        # back as exceptions, so what they print is kept for debug logging only
        sink = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            try:
                yield
            finally:
                if sink.tell():
                    logging.getLogger(__name__).debug("converter output:\n%s", sink.getvalue()[-20000:])
    finally:
        for n, lvl in old.items():
            logging.getLogger(n).setLevel(lvl)
        if old_env is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = old_env


def export_program(module, example_inputs: tuple, format_name: str):
    """torch.export (non-strict), with an error that names the format and operator."""
    import torch

    from edgeprune.errors import ExportError

    try:
        return torch.export.export(module, tuple(example_inputs), strict=False)
    except Exception as e:
        raise ExportError(f"{format_name}: torch.export failed: {first_line(e)}", format=format_name,
                          operator=operator_in(e)) from None
