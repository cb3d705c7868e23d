"""The ``litert`` backend: the ``ai-edge-litert`` interpreter on this CPU, for published ``.tflite``
files (no torch design is converted to it). Its default op resolver applies the XNNPACK delegate,
which also provides MediaPipe's custom ``Convolution2DTransposeBias``."""
from __future__ import annotations

from pathlib import Path


def open_interpreter(path: Path, threads: int):
    """An allocated interpreter of ``path`` with ``threads`` threads and the default op resolver."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_path=str(path), num_threads=int(threads),
                         experimental_op_resolver_type=OpResolverType.AUTO)
    interp.allocate_tensors()
    return interp


def options(threads: int) -> str:
    """The settings a row records."""
    return f"CPU,XNNPACK delegate (default resolver),num_threads={int(threads)}"
