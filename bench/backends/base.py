"""What every backend shares: the runner interface and the two errors a backend raises."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

MB = 1e6  # bytes in a megabyte, as in every *_mb field of the suite


class BackendUnavailable(RuntimeError):
    """The backend's package is not installed (the measurement becomes a ``skipped`` row)."""


class ConversionError(RuntimeError):
    """A converter failed or produced no model."""



class Runner:
    """One loaded model on one backend at a fixed thread count."""

    backend: str = ""
    threads: int = 1
    options: str = ""  # backend settings, for the result row
    converter: str = ""  # how the model was produced ("" for torch eager)
    model_size_mb: Optional[float] = None

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        """A zero-argument callable running one inference on ``x`` (1 x 3 x H x W float32)."""
        raise NotImplementedError

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs for ``x`` as numpy arrays with a batch axis (N x C x H x W)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()




def as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


@dataclass(frozen=True)
class LayerTime:
    index: int  # position in the .param file (torch: rank by time)
    name: str
    type: str  # ncnn layer type / torch operator
    ms: float  # median time of the layer over the repeats
    out_shape: str = ""




def time_by_type(layers: Sequence[LayerTime]) -> list[tuple[str, float, int]]:
    """(type, total ms, count) per layer type, largest first."""
    acc: dict[str, list] = {}
    for lt in layers:
        a = acc.setdefault(lt.type, [0.0, 0])
        a[0] += lt.ms
        a[1] += 1
    return sorted(((t, ms, n) for t, (ms, n) in acc.items()), key=lambda r: -r[1])
