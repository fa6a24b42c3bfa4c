"""LiteRT (TFLite) interpreter from ai-edge-litert, XNNPACK delegate on CPU.

Models with int8 inputs/outputs (full-integer quantization) take and return float32 here: the
session quantizes inputs with the model's own scale/zero-point and dequantizes outputs, into
buffers allocated once at load time.

    >>> s = LiteRTRuntime().load("model.tflite", threads=2)  # doctest: +SKIP
    >>> [y] = s.run([x_float32])                               # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.errors import EdgepruneError


class LiteRTRuntime:
    name = "litert"
    artifact_format = "tflite"

    def load(self, path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        path = Path(path)
        if not path.is_file():
            raise EdgepruneError(f"TFLite model not found: {path}")
        try:
            interp = Interpreter(model_path=str(path), num_threads=threads or None)
            interp.allocate_tensors()
        except Exception as e:
            raise EdgepruneError(f"LiteRT cannot load {path} ({type(e).__name__}); the file is corrupted or not "
                                 "a .tflite model: re-export it") from None
        return _LiteRTSession(interp)


class _Quant:
    """Affine (de)quantization with preallocated buffers; scale == 0 means 'not quantized'."""

    def __init__(self, detail: dict):
        import numpy as np

        self.index = detail["index"]
        self.dtype = np.dtype(detail["dtype"])
        self.shape = tuple(int(d) for d in detail["shape"])
        scale, zero = detail["quantization"]
        self.scale, self.zero = float(scale), int(zero)
        self.quantized = self.scale != 0.0 and self.dtype.kind in "iu"
        if self.quantized:
            info = np.iinfo(self.dtype)
            self.lo, self.hi = info.min, info.max
            self.fbuf = np.empty(self.shape, np.float32)
            self.qbuf = np.empty(self.shape, self.dtype)

    def quantize(self, x):
        import numpy as np

        if not self.quantized:
            return x
        np.multiply(x, 1.0 / self.scale, out=self.fbuf)
        np.rint(self.fbuf, out=self.fbuf)
        self.fbuf += self.zero
        np.clip(self.fbuf, self.lo, self.hi, out=self.fbuf)
        self.qbuf[...] = self.fbuf  # cast in place, no new array
        return self.qbuf

    def dequantize(self, q):
        import numpy as np

        if not self.quantized:
            return q
        out = q.astype(np.float32)
        out -= self.zero
        out *= self.scale
        return out

    def to_json(self) -> dict:
        return {"dtype": self.dtype.name, "scale": self.scale, "zero_point": self.zero}


class _LiteRTSession:
    def __init__(self, interp):
        self.interp = interp
        self.inputs = [_Quant(d) for d in interp.get_input_details()]
        self.outputs = [_Quant(d) for d in interp.get_output_details()]
        # what callers feed: float32 for quantized inputs, the model's dtype otherwise
        self.input_specs = [(q.shape, "float32" if q.quantized else q.dtype.name) for q in self.inputs]

    def quantization(self) -> dict:
        """Input/output quantization parameters (for the manifest)."""
        return {"inputs": [q.to_json() for q in self.inputs], "outputs": [q.to_json() for q in self.outputs]}

    def run(self, inputs: list) -> list:
        interp = self.interp
        for q, x in zip(self.inputs, inputs):
            interp.set_tensor(q.index, q.quantize(x))
        interp.invoke()
        return [q.dequantize(interp.get_tensor(q.index)) for q in self.outputs]
