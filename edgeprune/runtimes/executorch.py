"""ExecuTorch runtime (the pybindings bundled with the executorch wheel; XNNPACK kernels linked in).

    >>> s = ExecuTorchRuntime().load("model.pte", threads=2)   # doctest: +SKIP
    >>> [y] = s.run([x])                                         # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.errors import EdgepruneError

# ExecuTorch ScalarType codes -> numpy dtype names (the ones models take as inputs)
_ET_DTYPES = {6: "float32", 5: "float16", 4: "int64", 3: "int32", 1: "int8", 0: "uint8", 11: "bool"}


class ExecuTorchRuntime:
    name = "executorch"
    artifact_format = "executorch"

    def load(self, path, threads: int | None = None):
        from executorch.runtime import Runtime

        path = Path(path)
        if not path.is_file():
            raise EdgepruneError(f"ExecuTorch program not found: {path}")
        if threads:
            set_threads(threads)
        try:
            method = Runtime.get().load_program(str(path)).load_method("forward")
        except Exception as e:
            raise EdgepruneError(f"ExecuTorch cannot load {path} ({type(e).__name__}); the file is corrupted or "
                                 "not a .pte program: re-export it") from None
        return _EtSession(method)


def set_threads(n: int) -> None:
    """Size ExecuTorch's (process-wide) threadpool, which XNNPACK uses."""
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    _unsafe_reset_threadpool(int(n))


class _EtSession:
    def __init__(self, method):
        self.method = method
        meta = method.metadata
        self.input_specs = []
        for i in range(meta.num_inputs()):
            t = meta.input_tensor_meta(i)
            self.input_specs.append((tuple(t.sizes()), _ET_DTYPES.get(int(t.dtype()), "float32")))

    def run(self, inputs: list) -> list:
        import torch

        # torch.from_numpy shares memory: no copy of the input on the way in
        outs = self.method.execute([torch.from_numpy(x) for x in inputs])
        return [o.numpy() for o in outs]
