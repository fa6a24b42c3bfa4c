"""Input specs: `1x3x224x224`, several comma-separated, each optionally `:dtype`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgeprune.errors import InputSpecError

_DTYPES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
    "uint8": "uint8", "bool": "bool",
}
_SHAPE = re.compile(r"^\d+(x\d+)*$")


@dataclass(frozen=True)
class InputSpec:
    """Shape and dtype of one model input."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def __str__(self) -> str:
        s = "x".join(str(d) for d in self.shape)
        return s if self.dtype == "float32" else f"{s}:{self.dtype}"

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, d: dict) -> "InputSpec":
        return cls(tuple(int(x) for x in d["shape"]), d.get("dtype", "float32"))

    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


def parse_inputs(text: str) -> tuple[InputSpec, ...]:
    """Parse `1x3x224x224` or `1x3x32x32,1x10:int64` into InputSpecs."""
    if text is None or not str(text).strip():
        raise InputSpecError("--input is empty; give a shape such as 1x3x224x224")
    specs = []
    for part in str(text).split(","):
        part = part.strip().lower()
        shape_s, _, dtype_s = part.partition(":")
        if not _SHAPE.match(shape_s):
            raise InputSpecError(
                f"bad input shape '{part}'; write dimensions joined by 'x', e.g. 1x3x224x224 "
                f"(optionally ':int64'; several inputs comma-separated)"
            )
        shape = tuple(int(d) for d in shape_s.split("x"))
        if any(d <= 0 for d in shape):
            raise InputSpecError(f"bad input shape '{part}': every dimension must be >= 1")
        dtype = "float32"
        if dtype_s:
            if dtype_s not in _DTYPES:
                raise InputSpecError(
                    f"unknown dtype '{dtype_s}' in input '{part}'; use one of {sorted(set(_DTYPES.values()))}"
                )
            dtype = _DTYPES[dtype_s]
        specs.append(InputSpec(shape, dtype))
    return tuple(specs)


def format_inputs(specs: tuple[InputSpec, ...]) -> str:
    return ",".join(str(s) for s in specs)


def example_inputs(specs: tuple[InputSpec, ...], seed: int = 0) -> tuple:
    """Deterministic random tensors for the given specs (normal for floats, small ints otherwise)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for s in specs:
        dt = s.torch_dtype()
        if dt.is_floating_point:
            out.append(torch.randn(s.shape, generator=g).to(dt))
        elif dt == torch.bool:
            out.append(torch.randint(0, 2, s.shape, generator=g).bool())
        else:
            out.append(torch.randint(0, 10, s.shape, generator=g).to(dt))
    return tuple(out)
