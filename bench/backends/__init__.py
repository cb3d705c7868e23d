"""Inference backends: one module per backend and one table of them.

- :mod:`.table`: the backends (name, label, packages, version), read by the command line, the
  plan, the report and the rows. :func:`backend_missing` says why one cannot run here.
- :mod:`.torch_eager`, :mod:`.ncnn_x86`, :mod:`.onnxruntime_cpu`, :mod:`.litert_cpu`: one runner
  each (``bench/arm/runner.py`` runs ncnn on aarch64).
- :mod:`.convert`: a torch design converted for ncnn (pnnx) or exported to ONNX, cached by content.
- :mod:`.parity`: a backend's outputs against PyTorch's.

:func:`open_runner` gives a :class:`Runner` for a torch design on a backend at a thread count:
``infer(x)`` returns the outputs as numpy arrays and ``bind(x)`` a zero-argument callable doing one
inference on ``x`` (the thing the latency protocol times). Use runners as context managers: the
torch runner restores torch's thread count on exit.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch.nn as nn

from .base import MB, BackendUnavailable, ConversionError, LayerTime, Runner, time_by_type
from .convert import (DEFAULT_PNNX_FP16, NcnnModel, OnnxModel, conversion_key, convert_module_to_ncnn,
                      convert_to_ncnn, export_module_to_onnx, export_onnx, read_param_io, state_dict_digest)
from .ncnn_x86 import DEFAULT_NCNN_OPTIONS, NcnnOptions, NcnnRunner, ncnn_layer_times
from .onnxruntime_cpu import OnnxRuntimeRunner
from .parity import PARITY_ATOL, PARITY_MIN_IOU, PARITY_RTOL, ParityRecord, check_parity
from .table import BACKENDS, backend_label, backend_missing, backend_versions, package_version
from .torch_eager import TorchRunner, torch_op_times, torch_threads


def open_runner(backend: str, model: nn.Module, arch: str, input_size: int, threads: int, *,
                ncnn_options: NcnnOptions = DEFAULT_NCNN_OPTIONS, pnnx_fp16: bool = DEFAULT_PNNX_FP16,
                cache_dir: Optional[Path] = None) -> Runner:
    """Runner for ``model`` on ``backend``; converts (or reuses the cached conversion) as needed.

    Raises :class:`BackendUnavailable` when the backend's package is missing."""
    why = backend_missing(backend)
    if why:
        raise BackendUnavailable(why)
    if backend == "torch":
        return TorchRunner(model, threads)
    if backend == "ncnn":
        nm = convert_module_to_ncnn(model, arch, input_size, fp16=pnnx_fp16, cache_dir=cache_dir)
        return NcnnRunner(nm, threads, ncnn_options)
    om = export_module_to_onnx(model, arch, input_size, cache_dir=cache_dir)
    return OnnxRuntimeRunner(om, threads)




__all__ = ["BACKENDS", "MB", "BackendUnavailable", "ConversionError", "DEFAULT_NCNN_OPTIONS", "DEFAULT_PNNX_FP16",
           "LayerTime", "NcnnModel", "NcnnOptions", "NcnnRunner", "OnnxModel", "OnnxRuntimeRunner", "PARITY_ATOL",
           "PARITY_MIN_IOU", "PARITY_RTOL", "ParityRecord", "Runner", "TorchRunner", "backend_label",
           "backend_missing", "backend_versions", "check_parity", "conversion_key", "convert_module_to_ncnn",
           "convert_to_ncnn", "export_module_to_onnx", "export_onnx", "ncnn_layer_times", "open_runner",
           "package_version", "read_param_io", "state_dict_digest", "time_by_type", "torch_op_times",
           "torch_threads"]
