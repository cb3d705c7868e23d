"""The ``onnxruntime`` backend: the CPU execution provider, all graph optimisations, sequential
execution, one inter-op thread (the same session for a design's export and a published ONNX file)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .base import Runner
from .convert import OnnxModel


def open_session(path: str, threads: int):
    """An onnxruntime CPU session of the model file ``path`` with ``threads`` intra-op threads."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxRuntimeRunner(Runner):
    """onnxruntime CPU execution provider, all graph optimisations, sequential execution."""

    backend = "onnxruntime"

    def __init__(self, om: OnnxModel, threads: int):
        self.om, self.threads = om, int(threads)
        self.sess = open_session(om.path, threads)
        self.options = "CPUExecutionProvider,ORT_ENABLE_ALL,sequential,inter_op=1"
        self.converter = f"torch.onnx {torch.__version__} (TorchScript exporter, opset {om.opset})"
        self.model_size_mb = om.size_mb

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        feed = {self.om.in_names[0]: np.ascontiguousarray(x, dtype=np.float32)}
        sess, outs = self.sess, list(self.om.out_names)
        return lambda: sess.run(outs, feed)

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(o) for o in self.bind(x)())

    def close(self) -> None:
        self.sess = None  # frees the session and its (spinning) thread pool now


