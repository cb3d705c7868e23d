"""The ``ncnn`` backend: a design converted with pnnx (:mod:`bench.backends.convert`), run by the
``ncnn`` Python package on this CPU."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .base import ConversionError, LayerTime, Runner
from .convert import NcnnModel


@dataclass(frozen=True)
class NcnnOptions:
    """ncnn ``Option`` fields the suite sets (``num_threads`` comes from the runner).

    Defaults: ncnn's own (the option study in docs/latency.md found nothing faster that keeps
    parity on this CPU)."""

    lightmode: bool = True
    use_packing_layout: bool = True
    use_fp16_packed: bool = True
    use_fp16_storage: bool = True
    use_fp16_arithmetic: bool = True
    use_winograd_convolution: bool = True
    use_sgemm_convolution: bool = True
    openmp_blocktime: int = 20

    def describe(self) -> str:
        return ",".join(f"{k}={int(v) if isinstance(v, bool) else v}"
                        for k, v in dataclasses.asdict(self).items())


DEFAULT_NCNN_OPTIONS = NcnnOptions()



class NcnnRunner(Runner):
    """ncnn's ``Net`` + ``Extractor`` (one extractor per inference, as in ncnn's examples)."""

    backend = "ncnn"

    def __init__(self, nm: NcnnModel, threads: int, options: NcnnOptions = DEFAULT_NCNN_OPTIONS):
        import ncnn
        self._ncnn, self.nm, self.threads = ncnn, nm, int(threads)
        self.net = ncnn.Net()
        for k, v in dataclasses.asdict(options).items():
            setattr(self.net.opt, k, v)
        self.net.opt.num_threads = self.threads
        if self.net.load_param(nm.param_path) != 0 or self.net.load_model(nm.bin_path) != 0:
            raise ConversionError(f"ncnn could not load {nm.param_path}")
        self.options = options.describe()
        self.converter = f"pnnx {nm.pnnx_version} (fp16 weights={int(nm.fp16_weights)})"
        self.model_size_mb = nm.bin_size_mb

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(f"ncnn runner takes one 1 x C x H x W input, got {x.shape}")
        arr = np.ascontiguousarray(x[0], dtype=np.float32)
        mat = self._ncnn.Mat(arr)  # points into arr's memory, does not own it
        net, in_name, outs = self.net, self.nm.in_names[0], self.nm.out_names

        def run():
            ex = net.create_extractor()
            ex.input(in_name, mat)
            return [ex.extract(o) for o in outs]
        run.keep = (arr, mat)  # keep the input alive with the callable (a freed arr crashes ncnn)
        return run

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        res = []
        for name, (ret, mat) in zip(self.nm.out_names, self.bind(x)()):
            if ret != 0:
                raise RuntimeError(f"ncnn extract({name!r}) failed with code {ret}")
            res.append(np.array(mat)[None])
        return tuple(res)

    def close(self) -> None:
        self.net.clear()



def _param_layers(param_path: str | Path) -> list[tuple[str, str, list[str]]]:
    out = []
    for parts in (ln.split() for ln in Path(param_path).read_text().splitlines()[2:]):
        if len(parts) >= 4:
            n_in, n_out = int(parts[2]), int(parts[3])
            out.append((parts[0], parts[1], parts[4 + n_in:4 + n_in + n_out]))
    return out


def ncnn_layer_times(nm: NcnnModel, x: np.ndarray, threads: int, options: NcnnOptions = DEFAULT_NCNN_OPTIONS,
                     repeats: int = 10) -> list[LayerTime]:
    """Approximate time of every ncnn layer: on one extractor (light mode off, so every blob is
    kept) the layers' outputs are extracted in file order, so each ``extract`` runs just that layer;
    the cost of handing the blob out (a second ``extract`` of the same blob: unpacking to fp32,
    elempack 1) is subtracted. Median over ``repeats`` runs. The sum is close to, not equal to, the
    end-to-end latency."""
    import time

    import ncnn
    net = ncnn.Net()
    for k, v in dataclasses.asdict(options).items():
        setattr(net.opt, k, v)
    net.opt.lightmode = False
    net.opt.num_threads = int(threads)
    net.load_param(nm.param_path)
    net.load_model(nm.bin_path)
    arr = np.ascontiguousarray(x[0], dtype=np.float32)
    mat = ncnn.Mat(arr)  # points into arr, which stays alive until the end
    layers = [(i, t, n, tops) for i, (t, n, tops) in enumerate(_param_layers(nm.param_path)) if t != "Input"]
    samples: dict[int, list[float]] = {i: [] for i, *_ in layers}
    shapes: dict[int, str] = {}
    for _ in range(repeats + 1):  # the first pass warms up
        ex = net.create_extractor()
        ex.input(nm.in_names[0], mat)
        for i, _t, _n, tops in layers:
            t0 = time.perf_counter_ns()
            _, m = ex.extract(tops[0])
            t1 = time.perf_counter_ns()
            ex.extract(tops[0])
            t2 = time.perf_counter_ns()
            samples[i].append(max(0.0, ((t1 - t0) - (t2 - t1)) / 1e6))
            shapes[i] = f"{m.c}x{m.h}x{m.w}"
        del ex, m  # blobs go back to the net's allocators before the next pass / clear()
    net.clear()
    return [LayerTime(i, n, t, float(np.median(samples[i][1:])), shapes[i]) for i, t, n, _ in layers]


