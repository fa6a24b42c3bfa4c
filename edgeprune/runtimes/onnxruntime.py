"""ONNX Runtime (CPU execution provider)."""

from __future__ import annotations

from pathlib import Path

from edgeprune.errors import EdgepruneError


class OnnxRuntime:
    name = "onnxruntime"
    artifact_format = "onnx"

    def load(self, path, threads: int | None = None, profile_prefix: str | None = None):
        import onnxruntime as ort

        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if profile_prefix:
            so.enable_profiling = True
            so.profile_file_prefix = profile_prefix
        try:
            sess = ort.InferenceSession(str(Path(path)), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise EdgepruneError(f"ONNX Runtime cannot load {path} ({type(e).__name__}); the file is corrupted or not ONNX: re-export it") from None
        return _OrtSession(sess)


class _OrtSession:
    def __init__(self, sess):
        self.sess = sess
        self.input_names = [i.name for i in sess.get_inputs()]
        _np_types = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
                     "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(bool)": "bool"}
        # (shape, numpy dtype) per input, for runners that feed synthetic data
        self.input_specs = [(tuple(d if isinstance(d, int) else 1 for d in i.shape), _np_types.get(i.type, "float32"))
                            for i in sess.get_inputs()]

    def run(self, inputs: list) -> list:
        return self.sess.run(None, dict(zip(self.input_names, inputs)))
