"""The ``torch`` backend: PyTorch eager on this CPU, fp32, ``torch.inference_mode``."""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from .base import LayerTime, Runner, as_tuple

@contextlib.contextmanager
def torch_threads(n: int):
    """Set torch's intra-op thread count for the block and restore it afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)



class TorchRunner(Runner):
    """PyTorch eager, CPU, fp32, ``torch.inference_mode``; sets torch's thread count until closed."""

    backend = "torch"

    def __init__(self, model: nn.Module, threads: int):
        self.model, self.threads = model.eval(), int(threads)
        self.options = "eager,inference_mode,fp32"
        self._old_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        xt, model = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), self.model

        def run():
            with torch.inference_mode():
                return model(xt)
        return run

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(o.numpy().copy() for o in as_tuple(self.bind(x)()))

    def close(self) -> None:
        torch.set_num_threads(self._old_threads)



def torch_op_times(model: nn.Module, x: np.ndarray, threads: int, repeats: int = 10) -> list[LayerTime]:
    """Self CPU time per PyTorch operator (``torch.profiler``), mean per inference, largest first."""
    from torch.profiler import ProfilerActivity, profile

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch_threads(threads), torch.inference_mode():
        for _ in range(3):
            model(xt)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                model(xt)
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    return [LayerTime(i, e.key, e.key, e.self_cpu_time_total / 1e3 / repeats)
            for i, e in enumerate(rows) if e.self_cpu_time_total > 0]


